"""One error hierarchy for evledger; the CLI catches `EvledgerError` in one place."""

from __future__ import annotations

from pathlib import Path


class EvledgerError(Exception):
    """Base class: a one-line message, optionally naming the file it concerns."""

    exit_code = 2

    def __init__(self, message: str, *, path: Path | str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = Path(path) if path is not None else None

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path is not None else self.message


class InputError(EvledgerError):
    """A file or value given by the user is unusable (exit 2, nothing written)."""


class UsageError(EvledgerError):
    """The command was called wrongly (exit 2)."""


class SigningKeyError(EvledgerError):
    """A signing key is missing, unreadable or not trusted (exit 2)."""


class LedgerError(EvledgerError):
    """The ledger cannot be read or written (not a ledger, locked, corrupt store)."""


class VerificationFailed(EvledgerError):  # noqa: N818 - an outcome, not an error (python-tuf rule)
    """Verification found problems (exit 1)."""

    exit_code = 1


class NoGo(EvledgerError):  # noqa: N818 - an outcome, not an error
    """A gate evaluated to NO-GO (exit 1)."""

    exit_code = 1
