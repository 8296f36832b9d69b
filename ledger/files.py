"""Reading user files as hostile input, and writing output files atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from ledger.canonical import loads_strict
from ledger.errors import InputError

MAX_INPUT_BYTES = 64 * 1024 * 1024
MAX_KEY_BYTES = 64 * 1024


def read_regular_file(path: Path, *, max_bytes: int | None = None, what: str = "file") -> bytes:
    """The bytes of a regular file; refuses symlinks, missing files and oversize ones."""
    max_bytes = MAX_INPUT_BYTES if max_bytes is None else max_bytes
    if path.is_symlink():
        raise InputError(f"refusing a symlink as {what}", path=path)
    if not path.is_file():
        raise InputError(f"no such file ({what})", path=path)
    if path.stat().st_size > max_bytes:
        raise InputError(f"{what} is larger than {max_bytes:,} bytes", path=path)
    return path.read_bytes()


def read_json_file(path: Path, *, what: str = "file") -> Any:
    """A JSON file parsed strictly (no NaN/Infinity/unsafe integers)."""
    return loads_strict(read_regular_file(path, what=what), path=path)


def check_output_path(path: Path, what: str = "output") -> None:
    """Refuse to write through a symlink, onto a folder, or into a missing folder."""
    if path.is_symlink() or path.is_dir():
        raise InputError(f"refusing to write the {what} there (symlink or folder)", path=path)
    if not path.absolute().parent.is_dir():
        raise InputError(f"the {what}'s folder does not exist", path=path)


def write_atomic(path: Path, data: bytes) -> None:
    """Write a temp file beside `path`, then rename: nothing half-written on error."""
    check_output_path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.absolute().parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
