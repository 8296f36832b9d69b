"""Shared CLI output helpers: JSON to stdout, progress on stderr only when it is a terminal."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ledger.api import Ledger, open_ledger
from ledger.files import MAX_KEY_BYTES, read_regular_file
from ledger.verify import check_genesis_pin
from ledger.view import TrustAnchor, VerifiedView


def emit_json(obj: Any) -> None:
    """The only thing `--json` writes to stdout."""
    click.echo(json.dumps(obj, sort_keys=True, ensure_ascii=False))


def stdout() -> Console:
    """Console for human results."""
    # piped output is read by scripts and logs: don't squeeze tables into 80 columns
    width = None if sys.stdout.isatty() else 200
    return Console(highlight=False, soft_wrap=True, width=width)


def ledger_from(ctx: click.Context) -> Ledger:
    """The ledger named by --ledger / EVLEDGER_LEDGER / the current git root."""
    path: Path | None = ctx.obj.get("ledger") if ctx.obj else None
    return open_ledger(path)


@contextmanager
def progress_bar(label: str, enabled: bool = True) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on stderr (only on a TTY); yields update(done, total)."""
    if not enabled or not sys.stderr.isatty():
        yield lambda done, total: None
        return
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


#: `--key NAME`, the same on every command that signs
signing_key_option = click.option(
    "--key", "key_name", help="Signing key name (default $EVLEDGER_KEY, else the only key)."
)


def trusted_keys_option(help_text: str) -> Callable[[Any], Any]:
    """`--trusted-key PUB` (repeatable): public keys the reviewer pins."""
    return click.option(
        "--trusted-key",
        "trusted",
        multiple=True,
        type=click.Path(path_type=Path, dir_okay=False),
        help=help_text,
    )


def anchor_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--trusted-key PUB`... and `--genesis DIGEST`: the reviewer's pins, the same as verify's
    (every command that decides reads through them)."""
    command = click.option(
        "--genesis", help="Pin the genesis entry digest (sha256:<hex>, 16 hex digits at least)."
    )(command)
    return trusted_keys_option(
        "Pin a public key (PEM); the genesis must be signed by a pinned key."
    )(command)


def anchor_from(trusted: tuple[Path, ...], genesis: str | None) -> TrustAnchor:
    """The TrustAnchor of `--trusted-key`/`--genesis` (key files read with the usual limits)."""
    pinned = tuple(
        read_regular_file(p, max_bytes=MAX_KEY_BYTES, what="trusted key") for p in trusted
    )
    check_genesis_pin(genesis)
    return TrustAnchor(pinned, genesis)


def open_view(
    ctx: click.Context,
    trusted: tuple[Path, ...] = (),
    genesis: str | None = None,
    *,
    rev: str = "HEAD",
    quiet: bool = False,
) -> tuple[Ledger, VerifiedView]:
    """The ledger and its verified view under the reviewer's pins (progress on a TTY)."""
    anchor = anchor_from(trusted, genesis)
    ledger = ledger_from(ctx)
    with progress_bar("verifying", enabled=not quiet) as update:
        view = ledger.view(anchor, rev=rev, progress=update)
    return ledger, view


def exit_unless_verified(view: VerifiedView) -> None:
    """Exit 1 (after the output) when anything did not verify: a verdict over a partly
    verified ledger must not look like a clean one to a script."""
    if not view.ok:
        raise click.exceptions.Exit(1)
