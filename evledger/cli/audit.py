"""`evledger audit [--json|--md]`: claims vs reproductions vs the rate-distortion bound."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from evledger.cli.output import anchor_options, emit_json, exit_unless_verified, open_view, stdout
from ledger.audit import audit_view, verdict_text
from ledger.errors import UsageError, VerificationFailed


@click.command("audit")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.option("--md", "as_md", is_flag=True, help="A Markdown report on stdout.")
@click.option("--rev", default="HEAD", show_default=True, help="Git revision of the ledger.")
@anchor_options
@click.pass_context
def audit_cmd(
    ctx: click.Context,
    as_json: bool,
    as_md: bool,
    rev: str,
    trusted: tuple[Path, ...],
    genesis: str | None,
) -> None:
    """For each verified claim: its reproductions and corroborating evidence by other keys
    (verdict reproduced / diverged / unreproduced) and the rate-distortion check; exit 1 if
    any claim diverged or is implausible, or anything did not verify."""
    if as_json and as_md:
        raise UsageError("choose one of --json and --md")
    _, view = open_view(ctx, trusted, genesis, rev=rev, quiet=as_json)
    report = audit_view(view)
    if as_json:
        emit_json(report.to_json())
    elif as_md:
        click.echo(f"_{report.trust_line.replace('|', '/')}_\n\n" + report.to_markdown(), nl=False)
    else:
        click.echo(report.trust_line)
        table = Table(
            "seq",
            "runner",
            "signer",
            "verdict",
            "checks",
            "physics",
            "ratio",
            "cos",
            "bound",
            box=None,
        )
        for c in report.claims:
            p = c.physics
            table.add_row(
                str(c.seq),
                c.runner or "",
                c.signer[:12],
                verdict_text(c),
                str(len(c.checks)),
                p.status,
                "" if p.ratio is None else f"{p.ratio:.3f}",
                "" if p.cos is None else f"{p.cos:.6f}",
                "" if p.bound_ratio is None else f"{p.bound_ratio:.3f}",
            )
        console = stdout()
        console.print(table)
        for c in report.claims:
            if c.physics.note:
                console.print(f"seq {c.seq}: {c.physics.note}")
        n = report.counts()
        console.print(
            f"{n['claims']} claims: {n['reproduced']} reproduced, {n['diverged']} diverged, "
            f"{n['unreproduced']} unreproduced, {n['implausible']} implausible, "
            f"{n['needs-reproduction']} needing reproduction"
        )
    exit_unless_verified(view)
    if not report.ok:
        n = report.counts()
        raise VerificationFailed(
            f"audit: {n['diverged']} diverged, {n['implausible']} implausible, "
            f"{n['needs-reproduction']} needing reproduction claim(s)"
        )


COMMANDS = [audit_cmd]
