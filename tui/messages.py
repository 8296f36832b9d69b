"""App-wide messages: past-tense events posted by workers and widgets."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from ledger.index import Index
from ledger.verify import Report
from ledger.view import VerifiedView


@dataclass
class IndexLoaded(Message):
    """The entry index is ready (from cache or freshly built), or its first rows are."""

    index: Index
    seconds: float
    cached: bool
    partial: bool = False


@dataclass
class IndexProgress(Message):
    """Building the index: `done` of `total` new entries read."""

    done: int
    total: int

    def can_replace(self, message: Message) -> bool:
        """Only the newest progress matters."""
        return isinstance(message, IndexProgress)


@dataclass
class VerifyProgress(Message):
    """Verification has checked `done` of `total` entries."""

    done: int
    total: int

    def can_replace(self, message: Message) -> bool:
        """Only the newest progress matters."""
        return isinstance(message, VerifyProgress)


@dataclass
class VerifyFinished(Message):
    """Verification is done; `report` holds every problem found, `view` what verified, and
    `index` the listing checked against it (`index_differed` rows of the old one were wrong)."""

    report: Report
    seconds: float
    view: VerifiedView | None = None
    index: Index | None = None
    index_differed: int = 0


@dataclass
class VerifyFailed(Message):
    """Verification could not run at all (unreadable ledger)."""

    error: str


@dataclass
class EntrySelected(Message):
    """The user opened entry `seq`."""

    seq: int


@dataclass
class EntryMarked(Message):
    """The set of entries marked for a diff changed."""

    marked: tuple[int, ...]
