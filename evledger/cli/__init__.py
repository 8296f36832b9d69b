"""The `evledger` command.

Exit codes: 0 ok / GO; 1 verification failed, NO-GO, or audit divergence; 2 bad usage or bad
input (one line on stderr naming the file and the reason; nothing is written).
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from pathlib import Path

import click

from ledger.errors import EvledgerError
from ledger.textsafe import visible

#: modules that each expose COMMANDS = [click commands]; imported when the CLI starts
COMMAND_MODULES = [
    "evledger.cli.core",
    "evledger.cli.keys",
    "evledger.cli.run",
    "evledger.cli.verify",
    "evledger.cli.reproduce",
    "evledger.cli.bundle",
    "evledger.cli.audit",
    "evledger.cli.gate",
    "evledger.cli.diff",
    "evledger.cli.report",
    "evledger.cli.tui",
    "evledger.cli.witness",
    "evledger.cli.prove",
    "evledger.cli.pull",
]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--ledger",
    "ledger_path",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="EVLEDGER_LEDGER",
    help="Ledger folder (default: the git root of the current folder; env EVLEDGER_LEDGER).",
)
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks on errors.")
@click.option(
    "-q", "--quiet", is_flag=True, help="No progress bars or notes on stderr (errors still show)."
)
@click.version_option(package_name="evledger")
@click.pass_context
def cli(ctx: click.Context, ledger_path: Path | None, verbose: bool, quiet: bool) -> None:
    """evledger: signed, hash-chained, git-backed evidence for model-compression claims."""
    ctx.ensure_object(dict)
    ctx.obj["ledger"] = ledger_path
    ctx.obj["verbose"] = verbose
    ctx.obj["quiet"] = quiet


for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(_name)
    except ModuleNotFoundError as _e:  # a command group still being written must not break the rest
        if _e.name != _name:
            raise
        continue
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def _verbose_requested(argv: list[str]) -> bool:
    """`-v`/`--verbose` among the global options (before the command name)."""
    args = iter(argv)
    for arg in args:
        if arg in ("-v", "--verbose") or (
            arg.startswith("-") and not arg.startswith("--") and "v" in arg[1:]
        ):
            return True
        if arg == "--ledger":  # the one global option with a value
            next(args, None)
        elif arg == "--" or not arg.startswith("-"):
            return False
    return False


def _one_line(text: str) -> str:
    return visible(" ".join(str(text).split()))


def error_line(exc: BaseException) -> tuple[str, int]:
    """(the one stderr line, exit code) for any failure."""
    if isinstance(exc, EvledgerError):
        return f"evledger: {_one_line(str(exc))}", exc.exit_code
    if isinstance(exc, click.UsageError):
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        return f"evledger: {_one_line(exc.format_message())}{hint}", 2
    if isinstance(exc, click.ClickException):
        return f"evledger: {_one_line(exc.format_message())}", 2
    if isinstance(exc, click.exceptions.Abort):
        return "evledger: aborted", 2
    if isinstance(exc, KeyboardInterrupt):
        return "evledger: interrupted", 130
    if isinstance(exc, MemoryError):
        return "evledger: out of memory (is an input far larger than it should be?)", 2
    if isinstance(exc, RecursionError):
        return "evledger: input nested too deeply to process", 2
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        reason = exc.strerror or str(exc) or type(exc).__name__
        return f"evledger: {_one_line(where + reason)}", 2
    detail = _one_line(str(exc))[:300] or "(no message)"
    return f"evledger: {type(exc).__name__}: {detail} (rerun with -v for the traceback)", 2


def main(argv: list[str] | None = None) -> None:
    """Console entry point, the one place where every failure becomes one stderr line and an
    exit code; `-v` adds the traceback."""
    args = sys.argv[1:] if argv is None else argv
    verbose = _verbose_requested(args)
    try:
        code = cli.main(args=args, prog_name="evledger", standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except (Exception, KeyboardInterrupt) as e:
        line, exit_code = error_line(e)
        if verbose:
            traceback.print_exception(e, file=sys.stderr)
        click.echo(line, err=True)
        sys.exit(exit_code)
    sys.exit(code if isinstance(code, int) else 0)
