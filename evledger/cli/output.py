"""Shared CLI output helpers: JSON to stdout, human text that fits a terminal and pipes cleanly,
progress on stderr only when it is a terminal, and `--quiet`.

Every string taken from a ledger, policy, bundle or model is hostile: human output goes through
`ledger.textsafe` (`say`/`cell` here apply `visible()`; tables hold `Text`, never markup).
"""

from __future__ import annotations

import io
import json
import shutil
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from ledger.api import Ledger, open_ledger
from ledger.textsafe import safe_text, visible, visible_lines
from ledger.verify import check_genesis_pin
from ledger.view import TrustAnchor, VerifiedView

#: width of a rendering when stdout is not a terminal: wide enough that no table folds
PIPE_WIDTH = 10_000


def emit_json(obj: Any) -> None:
    """The only thing `--json` writes to stdout (exact strings, no escaping: JSON is inert)."""
    click.echo(json.dumps(obj, sort_keys=True, ensure_ascii=False))


def _options() -> dict[str, Any]:
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    return obj if isinstance(obj, dict) else {}


def quiet() -> bool:
    """True under `evledger --quiet`: no progress and no notes on stderr (results and errors
    still appear)."""
    return bool(_options().get("quiet"))


def stdout() -> Console:
    """Console for human results on a terminal: renderables wrap and fold to its width (Rich's
    soft_wrap would let `Syntax` crop them), no emoji codes, no markup, no highlighting. Piped
    output goes through `print_out` instead (no padding, no folding)."""
    return Console(highlight=False, soft_wrap=False, emoji=False, markup=False)


def render_plain(*renderables: RenderableType) -> str:
    """Renderables as plain text lines without trailing padding, as wide as they need."""
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=PIPE_WIDTH,
        color_system=None,
        highlight=False,
        emoji=False,
        markup=False,
        force_terminal=False,
        legacy_windows=False,
    )
    for renderable in renderables:
        console.print(renderable)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())


def stdout_is_tty() -> bool:
    """True when stdout is a terminal (tests replace this to see the terminal layout)."""
    return sys.stdout.isatty()


def print_out(*renderables: RenderableType) -> None:
    """Human results on stdout: folded to the terminal's width on a TTY (nothing cropped),
    plain lines without padding when piped."""
    if stdout_is_tty():
        console = stdout()
        for renderable in renderables:
            console.print(renderable)
        return
    text = render_plain(*renderables)
    click.echo(text)


def echo_folded(text: str) -> None:
    """Lines we laid out (hostile fields already escaped) on stdout: on a terminal each line
    longer than its width folds at word boundaries with a hanging indent; piped, unchanged."""
    if not stdout_is_tty():
        click.echo(text)
        return
    width = max(shutil.get_terminal_size().columns, 40)
    out: list[str] = []
    for line in text.split("\n"):
        indent = " " * (len(line) - len(line.lstrip(" ")) + 4)
        out.extend(
            textwrap.wrap(line, width, subsequent_indent=indent, break_on_hyphens=False) or [""]
        )
    click.echo("\n".join(out))


def table(*columns: str, **kwargs: Any) -> Table:
    """A borderless table whose cells fold instead of being cut with an ellipsis."""
    grid = Table(box=None, pad_edge=False, **kwargs)
    for name in columns:
        justify = "right" if name.startswith(">") else "left"
        grid.add_column(name.lstrip(">"), overflow="fold", justify=justify)
    return grid


def cell(value: object) -> Text:
    """A table cell from a hostile value: `visible()`, no markup."""
    return safe_text("" if value is None else value)


def say(text: str, *, err: bool = False) -> None:
    """One line of human output; control and bidi characters in it are shown escaped."""
    click.echo(visible(text), err=err)


def say_lines(text: str, *, err: bool = False) -> None:
    """Several lines we laid out (each hostile field already escaped): `visible()` per line."""
    click.echo(visible_lines(text), err=err)


def note(text: str) -> None:
    """An informational line on stderr (silenced by `--quiet`)."""
    if not quiet():
        say(text, err=True)


def plural(n: int, singular: str, plural_form: str | None = None) -> str:
    """`1 candidate`, `2 candidates`; `plural(3, "entry", "entries")`."""
    return f"{n} {singular if n == 1 else (plural_form or singular + 's')}"


def ledger_from(ctx: click.Context) -> Ledger:
    """The ledger named by --ledger / EVLEDGER_LEDGER / the current git root."""
    path: Path | None = ctx.obj.get("ledger") if ctx.obj else None
    return open_ledger(path)


@contextmanager
def progress_bar(label: str, enabled: bool = True) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on stderr, only on a TTY and not under `--quiet` or `--json`
    (pass `enabled=not as_json`); yields update(done, total). Until the first update it pulses
    with the elapsed time, so a step without a count still shows it is alive."""
    if not enabled or quiet() or not sys.stderr.isatty():
        yield lambda done, total: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn(visible(label)),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    console = Console(stderr=True, emoji=False, markup=False)
    with Progress(*columns, console=console, transient=True) as bar:
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


def _to_meta(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    ctx.meta[f"evledger.{param.name}"] = value
    return value


def witness_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--witness PUB`..., `--quorum K`, `--trust-policy FILE`: a checkpoint counts only with K
    valid witness cosignatures. They reach `anchor_from` through the click context, so a
    command's own signature does not change."""
    command = click.option(
        "--trust-policy",
        type=click.Path(path_type=Path, dir_okay=False),
        expose_value=False,
        callback=_to_meta,
        help="TOML file naming trusted_keys, genesis, witnesses and quorum.",
    )(command)
    command = click.option(
        "--quorum",
        type=click.IntRange(min=0),
        expose_value=False,
        callback=_to_meta,
        help="Valid cosignatures needed from the --witness keys (default 1 if any are named).",
    )(command)
    return click.option(
        "--witness",
        multiple=True,
        type=click.Path(path_type=Path, dir_okay=False),
        expose_value=False,
        callback=_to_meta,
        help="Witness public key (PEM or verifier-key file; repeatable).",
    )(command)


def anchor_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--trusted-key PUB`... and `--genesis DIGEST`: the reviewer's pins, the same as verify's
    (every command that decides reads through them), plus the witness options."""
    command = witness_options(command)
    command = click.option(
        "--genesis", help="Pin the genesis entry digest (sha256:<hex>, 16 hex digits at least)."
    )(command)
    return trusted_keys_option(
        "Pin a public key (PEM); the genesis must be signed by a pinned key."
    )(command)


def anchor_from(trusted: tuple[Path, ...], genesis: str | None) -> TrustAnchor:
    """The TrustAnchor of `--trusted-key`/`--genesis` (key files read with the usual limits)."""
    from evledger.cli.witness import trust_policy_from

    ctx = click.get_current_context(silent=True)
    meta = ctx.meta if ctx is not None else {}
    policy = trust_policy_from(
        trusted,
        tuple(meta.get("evledger.witness") or ()),
        meta.get("evledger.quorum"),
        meta.get("evledger.trust_policy"),
        genesis,
    )
    check_genesis_pin(policy.genesis)
    return TrustAnchor(policy.pinned_keys, policy.genesis, policy.witnesses, policy.quorum)


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
