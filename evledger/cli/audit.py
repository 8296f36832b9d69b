"""`evledger audit [--json|--md]`: claims vs reproductions vs the rate-distortion bound."""

from __future__ import annotations

import click

from evledger.cli.output import (
    cell,
    emit_json,
    ledger_from,
    plural,
    print_out,
    progress_bar,
    say,
    table,
)
from ledger.audit import audit_ledger, verdict_text
from ledger.errors import UsageError, VerificationFailed


@click.command("audit")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.option("--md", "as_md", is_flag=True, help="A Markdown report on stdout.")
@click.option("--rev", default="HEAD", show_default=True, help="Git revision of the ledger.")
@click.pass_context
def audit_cmd(ctx: click.Context, as_json: bool, as_md: bool, rev: str) -> None:
    """For each claim: its reproductions and corroborating evidence by other keys (verdict
    reproduced / diverged / unreproduced) and the Gaussian rate-distortion check; exit 1 if
    any claim diverged or is implausible."""
    if as_json and as_md:
        raise UsageError("choose one of --json and --md")
    with progress_bar("auditing", enabled=not as_json):
        report = audit_ledger(ledger_from(ctx), rev)
    if as_json:
        emit_json(report.to_json())
    elif as_md:
        click.echo(report.to_markdown(), nl=False)
    else:
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
            f"{n['implausible']} implausible"
        )
    if not report.ok:
        n = report.counts()
        raise VerificationFailed(
            f"audit: {n['diverged']} diverged, {n['implausible']} implausible claim(s)"
        )


COMMANDS = [audit_cmd]
