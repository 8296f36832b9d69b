"""`make demo`: the runner suite, the legacy samples, verify, gates, audit and report, with one
progress display, idempotent (a rerun appends nothing it already holds), ending on a summary.

Runners run in this process (one torch import, per-matrix progress through `run_runner`); the
read-only steps run the real `evledger ... --json` commands, so the summary shows exactly what a
reviewer's own `evledger verify`, `gate` and `audit` say.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ledger.api import Ledger, init_ledger, open_ledger, prepare_input
from ledger.canonical import canonical_bytes
from ledger.errors import EvledgerError, SigningKeyError
from ledger.keys import load_key

RUNNERS = ("memory", "static", "pareto", "pq", "proxy", "entropy", "hessian", "ecsq", "tcq")
CHECKS = ("verify", "gate", "audit", "report")
LEGACY_DIR = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "legacy-poc"
_RUN_LABEL = re.compile(r"^run (\d+)/(\d+): (.*)$")


@dataclass
class Outcome:
    """What the demo did, for the closing summary."""

    ledger: Path
    created: bool
    appended: list[int] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    by_runner: dict[str, int] = field(default_factory=dict)
    verify: dict[str, Any] = field(default_factory=dict)
    gate: dict[str, Any] = field(default_factory=dict)
    audit: dict[str, Any] = field(default_factory=dict)
    report: Path | None = None
    chart: Path | None = None
    checkpoint: Path | None = None


def _bare(statement: dict[str, Any]) -> bytes:
    """Canonical bytes of a statement without the ledger binding (seq, prev, kind, time)."""
    predicate = {k: v for k, v in statement.get("predicate", {}).items() if k != "ledger"}
    return canonical_bytes({**statement, "predicate": predicate})


def same_claim(
    entry_statement: dict[str, Any],
    runner: Any,
    params: dict[str, Any],
    subjects: list[dict[str, Any]],
) -> bool:
    """Whether a stored statement is this runner's claim: same runner version, parameters and
    model files. The runners are deterministic (the determinism block checks it), so running
    again would only append a duplicate."""
    pred = entry_statement.get("predicate", {})
    stored = {
        (s.get("name"), json.dumps(s.get("digest"), sort_keys=True))
        for s in entry_statement.get("subject", [])
        if isinstance(s, dict)
    }
    wanted = {(s["name"], json.dumps(s["digest"], sort_keys=True)) for s in subjects}
    return (
        pred.get("runner") == {"name": runner.name, "version": runner.version}
        and pred.get("params") == params
        and wanted <= stored
    )


def open_or_create(path: Path, key: str, say: Callable[[str], None]) -> tuple[Ledger, bool]:
    """Reuse the ledger at `path` (its signing key must be here), else create it."""
    if (path / ".git").exists():
        ledger = open_ledger(path)
        tip = ledger.tip()
        if tip is not None:
            try:
                load_key(key)
            except SigningKeyError as e:
                raise SystemExit(
                    f"evledger demo: {path} exists but its signing key {key!r} is not in "
                    f"this EVLEDGER_HOME ({e}); remove {path} or pass another folder: "
                    "make demo DEMO=another-folder"
                ) from None
            say(
                f"reusing [bold]{escape(str(path))}[/] ({tip[0] + 1} entries): "
                "claims it already holds are not run or appended again"
            )
            return ledger, False
    ledger, _ = init_ledger(path, key)
    say(f"created [bold]{escape(str(path))}[/] (genesis signed by key {key!r})")
    return ledger, True


def finish(progress: Progress, task: TaskID, text: str) -> None:
    """Complete a step's bar with `text`; without a terminal (no bars) print it as a line."""
    total = progress.tasks[task].total or 1
    progress.update(task, total=total, completed=total, description=text)
    if progress.disable:
        progress.console.print(text, soft_wrap=True)  # piped: one line, never folded


def run_runners(
    ledger: Ledger, key: str, progress: Progress, tasks: dict[str, TaskID], out: Outcome
) -> None:
    """Each runner with its own bar; skip a claim the ledger already holds."""
    from runners.base import resolve_params
    from runners.model import ModelSource
    from runners.registry import get_runner
    from runners.statement import run_runner, validate_statement

    statements = [(e.seq, e.document) for e in ledger.entries() if e.kind == "evidence"]
    for name in RUNNERS:
        task = tasks[name]
        runner = get_runner(name)
        params = resolve_params(runner, {})
        model = ModelSource(None, matrices=params.get("matrices", "linear"))
        subjects = [{"name": f.name, "digest": {"sha256": f.sha256}} for f in model.files()]
        held = [seq for seq, st in statements if same_claim(st, runner, params, subjects)]
        if held:
            out.by_runner[name] = held[-1]
            out.skipped.append(name)
            finish(progress, task, f"{name:<8} [dim]already in the ledger: seq {held[-1]}[/]")
            continue
        progress.start_task(task)
        started = time.perf_counter()

        def update(
            label: str, done: int, total: int, task: TaskID = task, name: str = name
        ) -> None:
            m = _RUN_LABEL.match(label)
            if m and total > 0:
                run, runs, what = int(m[1]), int(m[2]), m[3]
                progress.update(
                    task,
                    total=runs * total,
                    completed=(run - 1) * total + done,
                    description=f"{name:<8} run {run}/{runs} {escape(what[:34])}",
                )
            else:
                progress.update(task, description=f"{name:<8} {escape(label[:40])}")

        statement = run_runner(runner, model, params, repeat=2, progress=update)
        validate_statement(statement)
        entry = ledger.append([statement], key_name=key)[0]
        out.appended.append(entry.seq)
        out.by_runner[name] = entry.seq
        metrics = statement["predicate"]["metrics"]
        figures = ", ".join(
            f"{k} {metrics[k]:.4g}"
            for k in ("ratio_fp16_effective", "cos_min", "peak_rss_mb")
            if isinstance(metrics.get(k), int | float)
        )
        seconds = time.perf_counter() - started
        finish(progress, task, f"{name:<8} seq {entry.seq} · {escape(figures)} · {seconds:.0f} s")


def append_legacy(ledger: Ledger, key: str, out: Outcome) -> str:
    """The legacy POC samples, each once: an identical statement already held is skipped."""
    held = {_bare(e.document) for e in ledger.entries() if e.kind == "evidence"}
    fresh = [
        p
        for p in sorted(LEGACY_DIR.glob("*.json"))
        if _bare(prepare_input(p).statement) not in held
    ]
    if not fresh:
        return "already in the ledger"
    entries = ledger.append_files(fresh, key_name=key)
    out.appended.extend(e.seq for e in entries)
    return "appended " + ", ".join(
        f"seq {e.seq} ({p.name})" for e, p in zip(entries, fresh, strict=True)
    )


def evledger_json(ledger: Path, *args: str) -> dict[str, Any]:
    """Run `evledger --ledger L ARGS --json` and parse its one JSON document.

    gate and audit exit 1 for NO-GO / a failed audit: an answer, not an error."""
    cmd = [sys.executable, "-m", "evledger", "--ledger", str(ledger), *args, "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise SystemExit(
            f"evledger demo: `{' '.join(cmd[2:])}` failed: {proc.stderr.strip()}"
        ) from None


def run_checks(out: Outcome, key: str, progress: Progress, task: TaskID) -> None:
    """Checkpoint (if anything was appended), verify, gate, audit, report."""
    path = out.ledger
    env_key = {**os.environ, "EVLEDGER_KEY": key}
    progress.start_task(task)
    progress.update(task, total=len(CHECKS) + 1)
    note = path.with_name(f"{path.name}.checkpoint.note")
    if out.appended or not note.exists():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "evledger",
                "--ledger",
                str(path),
                "checkpoint",
                "-o",
                str(note),
            ],
            capture_output=True,
            check=True,
            env=env_key,
        )
    out.checkpoint = note
    progress.advance(task)
    for step in CHECKS:
        progress.update(task, description=f"{'checks':<8} {step}")
        if step == "report":
            report = path / "REPORT.md"
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "evledger",
                    "--ledger",
                    str(path),
                    "report",
                    "--md",
                    "-o",
                    str(report),
                ],
                capture_output=True,
                check=True,
            )
            out.report, out.chart = report, report.with_name("REPORT.pareto.svg")
        else:
            setattr(out, step, evledger_json(path, step))
        progress.advance(task)
    finish(progress, task, f"{'checks':<8} checkpoint, verify, gate, audit, report")


def summary(out: Outcome, seconds: float) -> tuple[Panel, str]:
    """The closing panel (what holds, what fails and why, where things are) and the markup of
    the commands to try next."""
    v, g, a = out.verify, out.gate, out.audit
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    ok = (
        "[green]OK[/]" if v.get("ok") else f"[red]FAILED[/] ({len(v.get('problems', []))} problems)"
    )
    grid.add_row(
        "verify",
        f"{ok} · {v.get('entries')} entries · trust anchor: {escape(str(v.get('trust_anchor')))}",
    )
    outcome = str(g.get("outcome", "?"))
    colour = "green" if g.get("go") else "red"
    grid.add_row(
        "gates", f"[bold {colour}]{outcome}[/] under policy {escape(str(g.get('policy')))}"
    )
    for c in g.get("claims", []):
        if c.get("state") == "pass":
            continue
        why = "; ".join(c.get("reasons", [])) or c.get("state", "")
        role = "[red]blocks[/]" if c.get("required") else "[dim]optional[/]"
        grid.add_row("", f"{role} {escape(str(c.get('id')))}: {escape(why)}")
    passed = [str(c.get("id")) for c in g.get("claims", []) if c.get("state") == "pass"]
    if passed:
        grid.add_row("", f"[green]pass[/] {escape(', '.join(passed))}")
    s = a.get("summary", {})
    grid.add_row(
        "audit",
        f"{s.get('claims', 0)} claims · {s.get('reproduced', 0)} reproduced · "
        f"{s.get('diverged', 0)} diverged · {s.get('unreproduced', 0)} not yet reproduced · "
        f"{s.get('implausible', 0)} above the Gaussian reference (implausible)",
    )
    for c in a.get("claims", []):
        physics = c.get("physics", {})
        if physics.get("status") == "implausible":
            note = physics.get("note") or "ratio above the Gaussian reference at its cos_min"
            who = f"seq {c.get('seq')} ({c.get('runner') or c.get('kind')})"
            grid.add_row("", f"[magenta]implausible[/] {escape(who)}: {escape(str(note))}")
    grid.add_row("report", f"{out.report}  (chart: {out.chart})")
    grid.add_row("checkpoint", f"{out.checkpoint}")
    did = f"appended {len(out.appended)} entries" if out.appended else "appended nothing (all held)"
    grid.add_row("this run", f"{did} · {seconds:.0f} s")
    led = str(out.ledger)
    a_seq, b_seq = out.by_runner.get("static"), out.by_runner.get("pareto")
    diff = f"{a_seq} {b_seq}" if a_seq is not None and b_seq is not None else "1 2"
    panel = Panel(grid, title="evledger demo", border_style=colour, expand=False)
    ev = command_name()
    tries = [
        (f"{ev} tui --ledger {led}", "browse, diff, gates and audit (press ? for the keys)"),
        (f"{ev} --ledger {led} diff {diff}", "two claims side by side"),
        (
            f"{ev} --ledger {led} verify --since {out.checkpoint}",
            "prove the ledger only grew since the checkpoint this run kept",
        ),
    ]
    lines = [f"  [bold cyan]{escape(cmd)}[/]\n    [dim]{why}[/]" for cmd, why in tries]
    return panel, "\n".join(["[bold]try next:[/]", *lines])


def command_name() -> str:
    """How to call evledger from the shell the demo was started in: `.venv/bin/evledger` when
    it lives in a virtual environment under the current folder (make demo), else `evledger`."""
    script = Path(sys.executable).parent / "evledger"
    try:
        return str(script.relative_to(Path.cwd())) if script.is_file() else "evledger"
    except ValueError:
        return "evledger"


def main(argv: list[str] | None = None) -> int:
    """Run the demo job on the folder given (default demo-ledger)."""
    parser = argparse.ArgumentParser(prog="evledger-demo", description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default="demo-ledger", type=Path)
    parser.add_argument("--key", default=os.environ.get("EVLEDGER_KEY", "demo"))
    args = parser.parse_args(argv)
    console = Console(highlight=False)
    started = time.perf_counter()
    try:
        ledger, created = open_or_create(args.folder, args.key, console.print)
        out = Outcome(args.folder, created)
        columns = (
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
        )
        bars = Progress(
            *columns, console=console, refresh_per_second=4, disable=not console.is_terminal
        )
        with bars as progress:
            tasks = {
                n: progress.add_task(f"{n:<8} waiting", start=False, total=None) for n in RUNNERS
            }
            legacy = progress.add_task(f"{'legacy':<8} waiting", start=False, total=1)
            checks = progress.add_task(f"{'checks':<8} waiting", start=False, total=None)
            run_runners(ledger, args.key, progress, tasks, out)
            progress.start_task(legacy)
            what = append_legacy(ledger, args.key, out)
            finish(progress, legacy, f"{'legacy':<8} {escape(what)}")
            run_checks(out, args.key, progress, checks)
    except (EvledgerError, subprocess.CalledProcessError) as e:
        detail = getattr(e, "stderr", b"") or b""
        text = detail.decode(errors="replace").strip() if isinstance(detail, bytes) else str(detail)
        console.print(f"evledger demo: {escape(str(e))} {escape(text)}", style="red")
        return 2
    panel, tries = summary(out, time.perf_counter() - started)
    console.print(panel)
    console.print(tries, soft_wrap=True)  # commands stay whole, to copy and paste
    return 0 if out.verify.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
