"""`evledger audit [--json|--md]`: claims vs reproductions vs the rate-distortion bound."""

from __future__ import annotations

from pathlib import Path

import click

from evledger.cli.output import (
    anchor_options,
    cell,
    emit_json,
    exit_unless_verified,
    open_view,
    plural,
    print_out,
    say,
    table,
)
from ledger.audit import audit_view, verdict_text
from ledger.errors import UsageError, VerificationFailed
from ledger.textsafe import md_cell


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
        click.echo(f"_{md_cell(report.trust_line)}_\n\n" + report.to_markdown(), nl=False)
    else:
        say(report.trust_line)
        grid = table(
            ">seq", "runner", "signer", "verdict", ">checks", "physics", ">ratio", ">cos", ">bound"
        )
        for c in report.claims:
            p = c.physics
            grid.add_row(
                cell(c.seq),
                cell(c.runner or ""),
                cell(c.signer[:12]),
                cell(verdict_text(c)),
                cell(len(c.checks)),
                cell(p.status),
                cell("" if p.ratio is None else f"{p.ratio:.3f}"),
                cell("" if p.cos is None else f"{p.cos:.6f}"),
                cell("" if p.bound_ratio is None else f"{p.bound_ratio:.3f}"),
            )
        print_out(grid)
        for c in report.claims:
            if c.physics.note:
                say(f"seq {c.seq}: {c.physics.note}")
        n = report.counts()
        say(
            f"{plural(n['claims'], 'claim')}: {n['reproduced']} reproduced, "
            f"{n['diverged']} diverged, {n['unreproduced']} unreproduced, "
            f"{n['implausible']} implausible, {n['needs-reproduction']} needing reproduction"
        )
    exit_unless_verified(view)
    if not report.ok:
        n = report.counts()
        raise VerificationFailed(
            f"audit: {n['diverged']} diverged, {n['implausible']} implausible, "
            f"{n['needs-reproduction']} needing reproduction claim(s)"
        )


COMMANDS = [audit_cmd]
