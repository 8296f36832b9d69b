"""Reading user files as hostile input, and writing output files atomically."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from ledger.canonical import loads_strict
from ledger.errors import EvledgerError, InputError

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


class OutputError(EvledgerError):
    """An output file could not be written (disk full, permissions); nothing was left."""


#: reports, bundles, checkpoint notes: readable by everyone the umask allows
PUBLIC_FILE_MODE = 0o644
#: secrets (private keys): the owner only
PRIVATE_FILE_MODE = 0o600


def write_atomic(path: Path, data: bytes, *, mode: int) -> None:
    """Write a temp file beside `path` with permission bits `mode` (the umask still applies,
    as for any new file), then rename: on any error nothing is left, half-written or not."""
    check_output_path(path)
    folder = path.absolute().parent
    tmp = folder / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"could not write the file: {e.strerror or e}", path=path) from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
