"""`evledger pull REMOTE`: fast-forward the ledger only to a verified, append-only tip."""

from __future__ import annotations

from dataclasses import dataclass

import click

from evledger.cli.output import emit_json, ledger_from, progress_bar
from ledger.api import Ledger
from ledger.errors import VerificationFailed
from ledger.verify import ProgressFn, stored_checkpoints, verify_ledger

PULL_REF = "refs/evledger/pull"


class PullRefused(VerificationFailed):
    """The fetched tip was not taken; `code` says why (exit 1, nothing changed locally)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"pull refused ({code}): {message}")
        self.code = code


@dataclass(frozen=True)
class PullResult:
    """Where the ledger was and is now."""

    old: str | None
    new: str
    entries: int
    since: int | None

    def to_json(self) -> dict[str, object]:
        """The `pull --json` document."""
        return {"old": self.old, "new": self.new, "entries": self.entries, "since": self.since}


def pull(
    ledger: Ledger,
    remote: str,
    branch: str | None = None,
    progress: ProgressFn | None = None,
) -> PullResult:
    """Fetch REMOTE's branch; fast-forward only if the new tip extends the local history,
    verifies, and is consistent with the newest local checkpoint."""
    store = ledger.store
    local = store.resolve("HEAD")
    branch = branch or store.branch_ref().removeprefix("refs/heads/")
    store._git("fetch", "--quiet", "--no-tags", remote, f"+{branch}:{PULL_REF}")
    try:
        new = store.resolve(PULL_REF)
        if new is None:
            raise PullRefused("no-genesis", f"{remote} has no branch {branch}")
        if local is not None and new == local:
            return PullResult(local, new, 0, None)
        if local is not None and not store.is_ancestor(local, new):
            raise PullRefused(
                "not-append-only",
                f"{remote} {branch} does not extend the local ledger (history rewritten)",
            )
        kept = stored_checkpoints(store, local)[-1] if local else None
        report = verify_ledger(
            store, rev=new, since_note=kept[1] if kept else None, progress=progress
        )
        if not report.ok:
            first = report.problems[0]
            raise PullRefused(first.code, f"seq {first.seq}: {first.message}")
        with store.lock():
            if local is None:
                store._git("reset", "--quiet", "--hard", new)
            else:
                store._git("merge", "--quiet", "--ff-only", new)
        return PullResult(local, new, report.entries, kept[0] if kept else None)
    finally:
        store._git("update-ref", "-d", PULL_REF, check=False)


@click.command("pull")
@click.argument("remote")
@click.option("--branch", help="Remote branch (default: the local branch's name).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.pass_context
def pull_cmd(ctx: click.Context, remote: str, branch: str | None, as_json: bool) -> None:
    """Fetch REMOTE (a git remote name, URL or path) and fast-forward only when the new tip
    verifies and is consistent with the newest local checkpoint; a rewritten remote history
    is refused (not-append-only, exit 1) and nothing changes locally."""
    with progress_bar("verify", enabled=not as_json) as update:
        result = pull(ledger_from(ctx), remote, branch, progress=update)
    if as_json:
        emit_json(result.to_json())
        return
    if result.old == result.new:
        click.echo(f"up to date at {result.new[:12]}")
        return
    since = f", consistent with checkpoint {result.since}" if result.since else ""
    click.echo(
        f"fast-forwarded {str(result.old)[:12]}..{result.new[:12]} ({result.entries} "
        f"entries verified{since})"
    )


COMMANDS = [pull_cmd]
