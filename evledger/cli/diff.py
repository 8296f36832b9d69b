"""`evledger diff REF REF` (DVC style: old, new, Δ, Δ%) and `diff --rev A..B` (gate changes)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from evledger.cli.output import (
    anchor_options,
    emit_json,
    exit_unless_verified,
    ledger_from,
    open_view,
)
from ledger.diff import EntryDiff, diff_entries, table_rows
from ledger.errors import UsageError
from ledger.gate import evaluate_view, gate_changes, resolve_policy
from ledger.textsafe import md_cell, md_text, visible

HEADER = ("section", "key", "old", "new", "Δ", "Δ%", "")


def _title(diff: EntryDiff) -> str:
    """The heading line (runner names are hostile: escape it for its output)."""
    a, b = diff.a, diff.b
    return (
        f"seq {a.seq} ({a.runner or a.kind}, {a.digest[:19]}) -> "
        f"seq {b.seq} ({b.runner or b.kind}, {b.digest[:19]})"
    )


def render_text(rows: list[tuple[str, ...]]) -> str:
    """Aligned columns, header first; every cell shown through `visible()`."""
    table = [HEADER, *(tuple(visible(c) for c in r) for r in rows)]
    widths = [max(len(r[i]) for r in table) for i in range(len(HEADER))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in table
    )


def render_markdown(rows: list[tuple[str, ...]]) -> str:
    """A Markdown table (DVC's --md)."""
    lines = [
        "| " + " | ".join(HEADER[:-1]) + " | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(md_cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _split_revs(spec: str) -> tuple[str, str]:
    a, sep, b = spec.partition("..")
    if not sep or not a or not b or b.startswith("."):
        raise UsageError(f"--rev wants A..B (two git revisions), not {spec!r}")
    return a, b


def _gate_diff(
    ctx: click.Context,
    spec: str,
    policy_spec: str | None,
    anchor: tuple[tuple[Path, ...], str | None],
    as_json: bool,
    as_md: bool,
) -> bool:
    """Print the gate changes between two revisions; True if both sides fully verified."""
    ledger = ledger_from(ctx)
    rev_a, rev_b = _split_revs(spec)
    commits = {}
    for rev in (rev_a, rev_b):
        commit = ledger.store.resolve(rev)
        if commit is None:
            raise UsageError(f"no such revision {rev!r} in the ledger")
        commits[rev] = commit
    _, view_a = open_view(ctx, *anchor, rev=commits[rev_a], quiet=as_json)
    _, view_b = open_view(ctx, *anchor, rev=commits[rev_b], quiet=as_json)
    policy = resolve_policy(policy_spec, view_b, ledger=ledger)
    old, new = evaluate_view(view_a, policy), evaluate_view(view_b, policy)
    changes = gate_changes(old, new)
    if as_json:
        emit_json(
            {
                "trust": {"a": view_a.trust_json(), "b": view_b.trust_json()},
                "policy": policy.name,
                "a": {
                    "rev": rev_a,
                    "commit": commits[rev_a],
                    "outcome": old.outcome,
                    "entries": old.entries,
                },
                "b": {
                    "rev": rev_b,
                    "commit": commits[rev_b],
                    "outcome": new.outcome,
                    "entries": new.entries,
                },
                "changes": [asdict(c) for c in changes],
            }
        )
        return view_a.ok and view_b.ok
    head = f"gate {policy.name}: {old.outcome} -> {new.outcome} ({rev_a}..{rev_b})"
    trust = [f"{rev_a}: {view_a.trust_line()}", f"{rev_b}: {view_b.trust_line()}"]
    rows = []
    for c in changes:
        src = f"seq {c.new_source.seq} {c.new_source.digest[:19]}" if c.new_source else "-"
        rows.append((c.id, "yes" if c.required else "no", c.old, c.new, src))
    if as_md:
        lines = [
            *(f"_{md_cell(t)}_  " for t in trust),
            "",
            f"**{md_cell(head)}**",
            "",
            "| claim | required | old | new | entry |",
            "|---|---|---|---|---|",
        ]
        lines += ["| " + " | ".join(md_cell(c) for c in r) + " |" for r in rows]
        click.echo("\n".join(lines))
        return view_a.ok and view_b.ok
    for t in trust:
        click.echo(visible(t))
    click.echo(visible(head))
    for r in rows:
        r = tuple(visible(c) for c in r)
        click.echo(f"  {r[0]:<10} {r[2]:>7} -> {r[3]:<7}  [{r[4]}]")
    if not rows:
        click.echo("  no claim changed")
    return view_a.ok and view_b.ok


@click.command("diff")
@click.argument("refs", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.option("--md", "as_md", is_flag=True, help="A Markdown table on stdout.")
@click.option("--all", "include_all", is_flag=True, help="Also list what did not change.")
@click.option(
    "--precision",
    type=click.IntRange(0, 17),
    default=5,
    show_default=True,
    help="Decimals shown for floats (text and Markdown).",
)
@click.option(
    "--rev", "revs", metavar="A..B", help="Gate outcome changes between two git revisions."
)
@click.option(
    "--policy", "policy_spec", metavar="FILE|NAME", help="Policy for --rev (default v37)."
)
@anchor_options
@click.pass_context
def diff_cmd(
    ctx: click.Context,
    refs: tuple[str, ...],
    as_json: bool,
    as_md: bool,
    include_all: bool,
    precision: int,
    revs: str | None,
    policy_spec: str | None,
    trusted: tuple[Path, ...],
    genesis: str | None,
) -> None:
    """What changed between two entries (REF: seq, digest prefix, `latest`, `RUNNER@latest`):
    params, metrics (old, new, Δ, Δ%), per-matrix rows, environment, subjects."""
    if as_json and as_md:
        raise UsageError("--json and --md are mutually exclusive")
    if revs is not None:
        if refs:
            raise UsageError("give either two REFs or --rev A..B, not both")
        if not _gate_diff(ctx, revs, policy_spec, (trusted, genesis), as_json, as_md):
            raise click.exceptions.Exit(1)
        return
    if len(refs) != 2:
        raise UsageError(f"diff needs two REFs (got {len(refs)}), or --rev A..B")
    _, view = open_view(ctx, trusted, genesis, quiet=as_json)
    a, b = view.resolve(refs[0]), view.resolve(refs[1])  # only entries that verified
    diff = diff_entries(a, b)
    if as_json:
        emit_json({**diff.to_json(include_all=include_all), "trust": view.trust_json()})
        exit_unless_verified(view)
        return
    rows = table_rows(diff, include_all=include_all, precision=precision)
    if as_md:
        click.echo(f"_{md_cell(view.trust_line())}_\n")
        click.echo(f"**{md_cell(_title(diff))}**\n")
        for note in diff.notes:
            click.echo(f"> {md_text(note)}\n")
        click.echo(render_markdown(rows), nl=False)
        exit_unless_verified(view)
        return
    click.echo(visible(view.trust_line()))
    click.echo(visible(_title(diff)))
    for note in diff.notes:
        click.echo(f"note: {visible(note)}")
    click.echo(render_text(rows) if rows else "no changes")
    exit_unless_verified(view)


COMMANDS = [diff_cmd]
