"""Run the real `evledger` entry point (with its single error handler) in-process."""

from __future__ import annotations

import click
from click.testing import CliRunner

from evledger.cli import main


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def _entry_point(ctx: click.Context) -> None:
    main(list(ctx.args))


def run(args: list[str]) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `evledger ARGS`."""
    result = CliRunner().invoke(_entry_point, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr
