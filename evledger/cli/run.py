"""`evledger runners` and `evledger run`: list the runners; measure, validate, sign, append."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.text import Text

from evledger.cli.output import (
    cell,
    emit_json,
    plural,
    print_out,
    quiet,
    say,
    signing_key_option,
    table,
)
from ledger.errors import InputError, UsageError
from ledger.textsafe import visible

SUMMARY_METRICS = (
    "ratio_fp16_effective",
    "cos_min",
    "cos_mean",
    "layer_out_cos_min",
    "embedding_cos_min",
    "ratio_model",
    "ppl_before",
    "ppl_after_gptq",
    "ppl_after_rtn",
    "ppl_ratio",
    "bytes_total",
    "bytes_entropy",
    "bytes_fixed_width",
    "entropy_gain_ok",
    "ratio_at_cos_099",
    "ratio_at_cos_094",
    "peak_rss_mb",
    "rd_gaussian_ratio",
    "rd_gaussian_efficiency",
    "determinism_delta",
)


def parse_param_pairs(pairs: tuple[str, ...]) -> dict[str, str]:
    """["bits=4", ...] -> {"bits": "4"}; a pair without '=' or repeated name is a UsageError."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"--param expects NAME=VALUE, got {pair!r}")
        if name in out:
            raise UsageError(f"--param {name} given twice")
        out[name] = value
    return out


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, int, int], None]]:
    """A rich progress bar on stderr when it is a terminal; else a no-op callback."""
    if not enabled or quiet() or not sys.stderr.isatty():
        yield lambda label, done, total: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    console = Console(stderr=True, emoji=False, markup=False)
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("starting", total=None)

        def update(label: str, done: int, total: int) -> None:
            description = Text(visible(label)[:60])  # a matrix name from the model: hostile
            bar.update(task, description=description, completed=done, total=total)

        yield update


def _fmt(value: Any) -> str:
    """Short human form of a metric value."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


@click.command("runners")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def runners_cmd(as_json: bool) -> None:
    """List the runners with their parameters, defaults and help."""
    from runners.registry import load_runners, plugins

    loaded = load_runners()
    plugged = plugins()
    docs = []
    for name, runner in loaded.items():
        origin = {"plugin": plugged[name].describe()} if name in plugged else {}
        if isinstance(runner, Exception):
            err = f"{type(runner).__name__}: {runner}"
            docs.append({"name": name, "available": False, "error": err, **origin})
            continue
        try:
            params = [p.describe() for p in runner.params]
        except Exception as exc:  # a plug-in with bad params must not hide the others
            err = f"{type(exc).__name__}: {exc}"
            docs.append({"name": name, "available": False, "error": err, **origin})
            continue
        docs.append(
            {
                "name": name,
                "available": True,
                "version": str(runner.version),
                "description": str(runner.description),
                "params": params,
                **origin,
            }
        )
    if as_json:
        emit_json({"runners": docs})
        return
    for doc in docs:
        src = ""
        if "plugin" in doc:
            src = f"  [plug-in {doc['plugin']['package']} {doc['plugin']['version']}]"
        if not doc["available"]:
            say(f"{doc['name']}{src}  (unavailable: {doc['error']})")
            continue
        say(f"{doc['name']} {doc['version']}{src}: {doc['description']}")
        grid = table("param", "type", "default", "help")
        for p in doc["params"]:
            grid.add_row(
                cell(p["name"]), cell(p["type"]), cell(json.dumps(p["default"])), cell(p["help"])
            )
        print_out(grid)
        click.echo()


@click.command("run")
@click.argument("runner_name", metavar="RUNNER")
@click.option(
    "--model",
    "model_path",
    type=click.Path(path_type=Path),
    help="A .safetensors file, a folder of shards or a Hugging Face model folder "
    "(default: the bundled MiniLM-L6).",
)
@click.option(
    "--param",
    "param_pairs",
    multiple=True,
    metavar="K=V",
    help="Runner parameter (repeatable); see `evledger runners`.",
)
@click.option(
    "--repeat",
    default=2,
    show_default=True,
    type=int,
    help="Measurements in fresh state (>= 2) for the determinism block.",
)
@click.option(
    "--device",
    type=click.Choice(["cpu", "cuda", "auto"]),
    default="cpu",
    show_default=True,
    help="Where runners do heavy math (forward passes, matmuls); recorded in the statement.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Measure and validate, append nothing; print the headline metrics "
    "(the whole statement with --json).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@signing_key_option
@click.pass_context
def run_cmd(
    ctx: click.Context,
    runner_name: str,
    model_path: Path | None,
    param_pairs: tuple[str, ...],
    repeat: int,
    device: str,
    dry_run: bool,
    as_json: bool,
    key_name: str | None,
) -> None:
    """Run one runner, validate its statement, sign and append it to the ledger."""
    from runners.base import resolve_params
    from runners.model import ModelSource
    from runners.registry import get_runner
    from runners.statement import run_runner, validate_statement

    if repeat < 2:
        raise UsageError("--repeat must be at least 2 (determinism needs two measurements)")
    from runners.device import resolve as resolve_device

    resolve_device(device)  # cuda without a GPU: exit 2 before any work
    runner = get_runner(runner_name)
    params = resolve_params(runner, parse_param_pairs(param_pairs))
    ledger = None
    if not dry_run:  # fail on a missing ledger before spending minutes measuring
        from ledger.api import open_ledger

        ledger = open_ledger(ctx.obj.get("ledger") if ctx.obj else None)
    matrices = params.get("matrices", "linear")
    model = ModelSource(model_path, matrices=matrices)
    with _progress(True) as progress:
        statement = run_runner(
            runner, model, params, repeat=repeat, progress=progress, device=device
        )
    try:
        validate_statement(statement)
    except ValueError as exc:
        raise InputError(f"runner {runner.name} produced an invalid statement: {exc}") from exc
    if dry_run:
        if as_json:
            click.echo(json.dumps(statement, sort_keys=True, allow_nan=False, ensure_ascii=False))
            return
        _print_summary(statement, None, None)
        say("dry run: nothing appended (--json prints the whole statement)")
        return
    assert ledger is not None
    entries = ledger.append([statement], key_name=key_name)
    entry = entries[0]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "seq": entry.seq,
                    "digest": entry.digest,
                    "runner": runner.name,
                    "metrics": statement["predicate"]["metrics"],
                    "rate_distortion": statement["predicate"].get("rate_distortion"),
                },
                sort_keys=True,
            )
        )
        return
    _print_summary(statement, entry.seq, entry.digest)


def _print_summary(statement: dict[str, Any], seq: int | None, digest: str | None) -> None:
    """Summary table of the headline metrics on stdout."""
    pred = statement["predicate"]
    metrics = pred["metrics"]
    title = f"{pred['runner']['name']} {pred['runner']['version']}"
    if seq is not None:
        title += f"  appended as seq {seq} ({digest})"
    say(title)
    grid = table("metric", ">value")
    for key in SUMMARY_METRICS:
        if key in metrics:
            grid.add_row(cell(key), cell(_fmt(metrics[key])))
    rd = pred.get("rate_distortion")
    if rd and rd.get("bound_ratio") is not None:  # a reference, not a bound for real weights
        grid.add_row(cell("Gaussian reference at cos_min"), cell(_fmt(rd["bound_ratio"])))
        if "within_bound" in rd:
            grid.add_row(cell("at or below the reference"), cell(_fmt(rd["within_bound"])))
    data = rd.get("data_bound") if rd else None
    if isinstance(data, dict) and data.get("ratio") is not None:
        grid.add_row(cell("data-dependent bound (weights)"), cell(_fmt(data["ratio"])))
    det = pred["determinism"]
    grid.add_row(
        cell("runs / digests equal"), cell(f"{det['runs']} / {_fmt(det['digests_equal'])}")
    )
    print_out(grid)
    if rows := pred.get("rows") or []:
        say(f"{plural(len(rows), 'per-matrix row')} (see --json, or evledger show once appended)")


COMMANDS = [runners_cmd, run_cmd]
