"""The `evledger` command.

Exit codes: 0 ok / GO; 1 verification failed, NO-GO, or audit divergence; 2 bad usage or bad
input (one line on stderr naming the file and the reason; nothing is written).
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import click

from ledger.errors import EvledgerError

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
@click.version_option(package_name="evledger")
@click.pass_context
def cli(ctx: click.Context, ledger_path: Path | None, verbose: bool) -> None:
    """evledger: signed, hash-chained, git-backed evidence for model-compression claims."""
    ctx.ensure_object(dict)
    ctx.obj["ledger"] = ledger_path
    ctx.obj["verbose"] = verbose


for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(_name)
    except ModuleNotFoundError as _e:  # a command group still being written must not break the rest
        if _e.name != _name:
            raise
        continue
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one place where errors become exit codes."""
    verbose = "-v" in (argv or sys.argv) or "--verbose" in (argv or sys.argv)
    try:
        code = cli.main(args=argv, prog_name="evledger", standalone_mode=False)
    except EvledgerError as e:
        if verbose:
            raise
        click.echo(f"evledger: {e}", err=True)
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("evledger: aborted", err=True)
        sys.exit(2)
    except click.ClickException as e:
        e.show()
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("evledger: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    sys.exit(code if isinstance(code, int) else 0)
