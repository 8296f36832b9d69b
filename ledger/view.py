"""The verified view: the only way a command that decides reads a ledger.

`verified_view(ledger, anchor)` runs the same verification as `evledger verify` and keeps the
entries that verified under the active trust anchor, in seq order. Everything else is listed as
excluded with its seq and problem codes, never counted. Gate, report, audit, diff, export and
every TUI screen read `view.entries`; their outputs open with `view.trust_line()`.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ledger.chain import Entry
from ledger.errors import UsageError
from ledger.verify import ENTRY_CODES, Problem, Report, verify_ledger

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class TrustAnchor:
    """What the reader pins: root keys (PEM) and/or the genesis digest; nothing = unpinned.

    `witnesses` (Ed25519 public keys) and `quorum`: a checkpoint counts only with `quorum`
    valid cosignatures by distinct named witnesses, and only entries below the newest such
    checkpoint are vouched for (the others are excluded as `not-witnessed`).
    """

    pinned_keys: tuple[bytes, ...] = ()
    genesis: str | None = None
    witnesses: tuple[Any, ...] = ()
    quorum: int = 0

    @property
    def pinned(self) -> bool:
        """True if the reader pinned anything (else the ledger's own genesis is trusted)."""
        return bool(self.pinned_keys or self.genesis)


@dataclass(frozen=True)
class Excluded:
    """An entry that did not verify: kept out of every verdict."""

    seq: int
    codes: tuple[str, ...]
    message: str

    def to_json(self) -> dict[str, Any]:
        """JSON form (`excluded` in every deciding command's --json)."""
        return {"seq": self.seq, "codes": list(self.codes), "message": self.message}


@dataclass
class VerifiedView:
    """A ledger as far as it verifies: the verified entries and what was left out."""

    report: Report
    entries: list[Entry]
    excluded: list[Excluded] = field(default_factory=list)
    anchor: TrustAnchor = TrustAnchor()
    rev: str = "HEAD"

    @property
    def ok(self) -> bool:
        """True when the whole ledger verified (nothing excluded, no ledger-level problem)."""
        return self.report.ok

    @property
    def total(self) -> int:
        """Entries the ledger holds (verified or not)."""
        return self.report.entries

    @property
    def ledger_problems(self) -> list[Problem]:
        """Problems that name no entry of their own (stray files, gaps, checkpoints)."""
        return [p for p in self.report.problems if p.code not in ENTRY_CODES or p.seq is None]

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def trust_line(self) -> str:
        """One line that opens every deciding output: anchor, N of M verified, exclusions."""
        line = (
            f"trust: {self.report.trust_anchor}; "
            f"{len(self.entries)} of {self.total} entries verified"
        )
        if self.excluded:
            shown = ", ".join(f"seq {x.seq} ({'/'.join(x.codes)})" for x in self.excluded[:5])
            more = f" and {len(self.excluded) - 5} more" if len(self.excluded) > 5 else ""
            line += f"; excluded: {shown}{more}"
        if others := self.ledger_problems:
            line += f"; ledger problems: {', '.join(sorted({p.code for p in others}))}"
        return line

    def trust_json(self) -> dict[str, Any]:
        """The `trust` block of every deciding command's --json."""
        return {
            "anchor": self.report.trust_anchor,
            "pinned": self.anchor.pinned,
            "genesis": self.report.genesis,
            "entries": self.total,
            "verified": len(self.entries),
            "ok": self.ok,
            "excluded": [x.to_json() for x in self.excluded],
            "problems": [
                {"seq": p.seq, "code": p.code, "message": p.message} for p in self.ledger_problems
            ],
        }

    def resolve(self, ref: str) -> Entry:
        """A verified entry by seq, digest (prefix), `latest` or `RUNNER@latest`; a reference
        to an excluded entry is refused with its codes."""
        from ledger.evidence import runner_of

        ref = ref.strip()
        if not self.entries:
            if not self.total:
                raise UsageError("empty ledger")
            raise UsageError(f"no entry of this ledger verifies: {self.trust_line()}")
        if ref == "latest":
            return self.entries[-1]
        if ref.endswith("@latest"):
            name = ref[: -len("@latest")]
            matches = [e for e in self.entries if runner_of(e) == name and e.kind != "genesis"]
            if not matches:
                raise UsageError(f"no verified entry from runner {name!r}")
            return matches[-1]
        if ref.isdigit():
            seq = int(ref)
            for entry in self.entries:
                if entry.seq == seq:
                    return entry
            self._refuse_excluded(lambda x: x.seq == seq, ref)
            raise UsageError(f"no entry with seq {seq}")
        prefix = ref if ref.startswith("sha256:") else "sha256:" + ref
        if len(prefix) < 7 + 4:
            raise UsageError(f"digest prefix {ref!r} is too short (4 hex digits at least)")
        found = [e for e in self.entries if e.digest.startswith(prefix)]
        if len(found) != 1:
            self._refuse_excluded(
                lambda x: (
                    self.report.digests[x.seq].startswith(prefix)
                    if x.seq < len(self.report.digests)
                    else False
                ),
                ref,
            )
            raise UsageError(f"{'no' if not found else 'more than one'} entry matches {ref!r}")
        return found[0]

    def _refuse_excluded(self, match: Callable[[Excluded], bool], ref: str) -> None:
        for x in self.excluded:
            if match(x):
                raise UsageError(f"seq {x.seq} does not verify ({', '.join(x.codes)}): {x.message}")


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while the view is built, then freeze what it keeps:
    a view holds every entry alive for as long as it is read, and without the freeze each
    collection would rescan them all (gate/report slowed 2-3x at 10k entries). Entries hold no
    reference cycles; reference counting frees them whatever the collector does."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def verified_view(
    ledger: Any,
    anchor: TrustAnchor | None = None,
    *,
    rev: str = "HEAD",
    progress: ProgressFn | None = None,
) -> VerifiedView:
    """Verify the ledger at `rev` under `anchor` and keep only what verified."""
    anchor = anchor or TrustAnchor()
    kept: list[Entry] = []
    with _collector_paused():  # keeping every entry alive makes each GC pass rescan them all
        report = verify_ledger(
            ledger.store,
            rev=rev,
            pinned_keys=list(anchor.pinned_keys),
            genesis=anchor.genesis,
            progress=progress,
            keep=kept,
        )
    by_seq: dict[int, list[Problem]] = {}
    for problem in report.problems:
        if problem.seq is not None and problem.code in ENTRY_CODES:
            by_seq.setdefault(problem.seq, []).append(problem)
    excluded = [
        Excluded(seq, tuple(sorted({p.code for p in found})), found[0].message)
        for seq, found in sorted(by_seq.items())
    ]
    if anchor.quorum:
        excluded += _apply_quorum(ledger, anchor, rev, report, kept, by_seq)
        excluded.sort(key=lambda x: x.seq)
    entries = [e for e in kept if e.seq not in by_seq]
    return VerifiedView(report, entries, excluded, anchor, rev)


def _apply_quorum(
    ledger: Any,
    anchor: TrustAnchor,
    rev: str,
    report: Report,
    kept: list[Entry],
    by_seq: dict[int, list[Problem]],
) -> list[Excluded]:
    """Exclude what no checkpoint with the witness quorum covers; name the quorum's anchor."""
    from ledger.witness import apply_quorum

    check = apply_quorum(ledger.store, rev, anchor.witnesses, anchor.quorum, report)
    if check.problem is None:
        return []
    covered = check.size or 0
    out = []
    for entry in kept:
        if entry.seq >= covered and entry.seq not in by_seq:
            problem = Problem(entry.seq, "not-witnessed", check.problem)
            by_seq[entry.seq] = [problem]
            out.append(Excluded(entry.seq, ("not-witnessed",), check.problem))
    return out


__all__ = ["Excluded", "TrustAnchor", "VerifiedView", "verified_view"]
