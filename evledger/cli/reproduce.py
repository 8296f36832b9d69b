"""`evledger reproduce REF`: re-run a claim and append a reproduction with per-metric deltas."""

from __future__ import annotations

from pathlib import Path

import click

from evledger.cli.output import (
    anchor_from,
    anchor_options,
    emit_json,
    ledger_from,
    progress_bar,
    say,
    signing_key_option,
)
from evledger.rerun import RunnerRerunner
from ledger.errors import UsageError, VerificationFailed
from ledger.reproduce import Tolerance, parse_tolerance, reproduce


def _params(items: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--param {item!r}: use K=V")
        out[key.strip()] = value
    return out


@click.command("reproduce")
@click.argument("ref")
@click.option(
    "--model",
    "model_path",
    type=click.Path(path_type=Path),
    help="The model the claim measured (its sha256 must match the claim's subject).",
)
@click.option(
    "--tolerance",
    "tolerances",
    multiple=True,
    metavar="METRIC=X[%]",
    help="Allowed |delta| for a metric (absolute, or relative with %); repeatable.",
)
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="K=V",
    help="Override a recorded parameter (the reproduction then records the change).",
)
@click.option("--repeat", type=click.IntRange(min=2), default=2, show_default=True)
@signing_key_option
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@anchor_options
@click.pass_context
def reproduce_cmd(
    ctx: click.Context,
    ref: str,
    model_path: Path | None,
    tolerances: tuple[str, ...],
    params: tuple[str, ...],
    repeat: int,
    key_name: str | None,
    as_json: bool,
    trusted: tuple[Path, ...],
    genesis: str | None,
) -> None:
    """Re-run claim REF's runner with its recorded params on the same model and append a
    `reproduction` entry with per-metric deltas; exit 1 if it diverged."""
    overrides: dict[str, Tolerance] = dict(parse_tolerance(t) for t in tolerances)
    ledger = ledger_from(ctx)
    anchor = anchor_from(trusted, genesis)
    with progress_bar("reproducing", enabled=not as_json) as bar:
        result = reproduce(
            ledger,
            ref,
            rerunner=RunnerRerunner(),
            model_path=model_path,
            tolerances=overrides,
            params=_params(params),
            repeat=repeat,
            key_name=key_name,
            progress=lambda label, done, total: bar(done, total),
            anchor=anchor,
        )
    if as_json:
        emit_json(result.to_json())
    else:
        say(
            f"appended seq {result.entry.seq} reproduction {result.entry.digest} "
            f"of seq {result.claim.seq}: {result.verdict.upper()}"
        )
        for name, change in result.param_changes.items():
            say(f"  param {name}: claim {change['claim']!r} -> {change['reproduced']!r}")
        for name, d in result.deltas.items():
            if not d["ok"]:
                say(
                    f"  {name}: claim {d['claim']} reproduced {d['reproduced']} "
                    f"delta {d['delta']} (tolerance {d['tolerance']})"
                )
    if result.verdict != "reproduced":
        raise VerificationFailed(f"seq {result.claim.seq} diverged (see seq {result.entry.seq})")


COMMANDS = [reproduce_cmd]
