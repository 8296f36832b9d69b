"""`evledger report [--md|--json] [-o FILE]`: the results table and a Pareto plot."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from evledger.cli.output import anchor_options, emit_json, exit_unless_verified, note, open_view
from ledger.attestation import model_index
from ledger.errors import UsageError
from ledger.files import PUBLIC_FILE_MODE, check_output_path, write_atomic
from ledger.gate import resolve_policy
from ledger.report import Report, report_for_view, to_markdown, write_pareto_svg
from ledger.view import VerifiedView


def plot_path(output: Path) -> Path:
    """Where the SVG goes: next to the Markdown report, `<stem>.pareto.svg`."""
    return output.with_name(f"{output.stem}.pareto.svg")


@click.command("report")
@click.option("--md", "as_md", is_flag=True, help="Markdown (the default).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write here instead of stdout (Markdown also gets <stem>.pareto.svg beside it).",
)
@click.option("--policy", "policy_spec", metavar="FILE|NAME", help="Policy (default v37).")
@click.option(
    "--model-index",
    "model_name",
    metavar="MODEL",
    help="Write a Hugging Face model card `model-index` YAML block for MODEL instead.",
)
@anchor_options
@click.pass_context
def report_cmd(
    ctx: click.Context,
    as_md: bool,
    as_json: bool,
    output: Path | None,
    policy_spec: str | None,
    model_name: str | None,
    trusted: tuple[Path, ...],
    genesis: str | None,
) -> None:
    """Per claim: best verified evidence, figures, gate state, reproduced or not, entry digest
    (exit 1 if anything did not verify)."""
    if sum((as_json, as_md, model_name is not None)) > 1:
        raise UsageError("choose one of --json, --md and --model-index")
    if output is not None:
        check_output_path(output)
    ledger, view = open_view(ctx, trusted, genesis, quiet=as_json)
    report = report_for_view(view, resolve_policy(policy_spec, view, ledger=ledger))
    if model_name is not None:
        text = model_index(report, model_name)
        if output is None:
            click.echo(text, nl=False)
        else:
            write_atomic(output, text.encode(), mode=PUBLIC_FILE_MODE)
            note(f"wrote {output}")
    else:
        _write(report, as_json, output, view)
    exit_unless_verified(view)


def _write(report: Report, as_json: bool, output: Path | None, view: VerifiedView) -> None:
    if as_json:
        if output is None:
            emit_json(report.to_json())
            return
        text = json.dumps(report.to_json(), sort_keys=True, ensure_ascii=False, indent=2) + "\n"
        write_atomic(output, text.encode(), mode=PUBLIC_FILE_MODE)
        note(f"wrote {output}")
        return
    if output is None:
        click.echo(to_markdown(report), nl=False)
        return
    svg = plot_path(output)
    check_output_path(svg)
    tmp_svg = svg.with_name(f".{svg.name}.tmp")
    from ledger.audit import audit_view  # hollow markers: claims not yet reproduced

    verdicts = {c.seq: c.verdict for c in audit_view(view).claims}
    write_pareto_svg(report.points, tmp_svg, verdicts=verdicts)
    try:
        write_atomic(output, to_markdown(report, plot=svg.name).encode(), mode=PUBLIC_FILE_MODE)
    except BaseException:
        tmp_svg.unlink(missing_ok=True)
        raise
    os.replace(tmp_svg, svg)
    note(f"wrote {output} and {svg}")


COMMANDS = [report_cmd]
