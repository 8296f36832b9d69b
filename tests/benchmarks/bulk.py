"""Bulk appends through one `git fast-import` stream: builds 100k-entry benchmark ledgers fast.

Entries are built exactly as `Ledger.append_prepared` builds them (`build_entry`, same chain,
same signing key, same paths); only the git side differs: every `per_commit` entries become
one commit written into a pack by a single `git fast-import` process, instead of loose objects.
The branch moves once at the end (fast-import refuses a non-fast-forward), then the index and
working tree are brought forward with a two-tree `git read-tree -m -u`.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterable
from typing import IO

from ledger.api import Ledger, Prepared
from ledger.chain import build_entry
from ledger.errors import LedgerError
from ledger.keys import default_key_name, load_key
from ledger.store import AUTHOR, entry_path


def bulk_append(
    ledger: Ledger,
    prepared: Iterable[Prepared],
    *,
    key_name: str | None = None,
    per_commit: int = 1000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Sign and append every item, `per_commit` entries per commit; return how many."""
    key = load_key(key_name or default_key_name())
    store = ledger.store
    with store.lock():
        parent = store.resolve()
        tip = ledger.tip()
        if parent is None or tip is None:
            raise LedgerError("the ledger has no genesis entry", path=ledger.root)
        seq, prev = tip[0] + 1, tip[1]
        ref = store.branch_ref()
        proc = subprocess.Popen(
            ["git", "fast-import", "--quiet", "--done"],
            cwd=ledger.root,
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdin is not None
        out, count, batch = proc.stdin, 0, []
        try:
            for item in prepared:
                entry = build_entry(item.statement, kind=item.kind, seq=seq, prev=prev, keys=[key])
                batch.append((entry_path(seq), entry.raw))
                seq, prev = seq + 1, entry.digest
                if len(batch) == per_commit:
                    _commit(out, ref, batch, parent if count == 0 else None)
                    count += len(batch)
                    batch = []
                    if progress:
                        progress(count)
            if batch:
                _commit(out, ref, batch, parent if count == 0 else None)
                count += len(batch)
            out.write(b"done\n")
            out.close()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        err = proc.stderr.read() if proc.stderr else b""
        if proc.wait() != 0:
            raise LedgerError(f"git fast-import failed: {err.decode(errors='replace').strip()}")
        if count and not store.bare:
            store._git("read-tree", "-m", "-u", parent, "HEAD")
    return count


def _commit(out: IO[bytes], ref: str, files: list[tuple[str, bytes]], parent: str | None) -> None:
    """One fast-import commit adding `files` (the first one names its parent explicitly)."""
    first, last = int(files[0][0][-14:-5]), int(files[-1][0][-14:-5])
    message = f"evledger: append {len(files)} entries (seq {first}..{last})\n".encode()
    stamp = f"{int(time.time())} +0000"
    out.write(f"commit {ref}\ncommitter {AUTHOR} {stamp}\n".encode())
    out.write(b"data %d\n%s" % (len(message), message))
    if parent:
        out.write(f"from {parent}\n".encode())
    for path, data in files:
        out.write(f"M 100644 inline {path}\n".encode())
        out.write(b"data %d\n%s\n" % (len(data), data))
    out.write(b"\n")
