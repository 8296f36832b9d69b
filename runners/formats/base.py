"""The common view of a compressed checkpoint, and safetensors header accounting."""

from __future__ import annotations

import hashlib
import json
import struct
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from ledger.errors import InputError
from runners.model import read_safetensors_header

_HASH_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class StoredTensor:
    """One tensor as stored on disk: name, dtype, shape, its bytes from the header's offsets."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    file: str


@dataclass(frozen=True)
class FileRecord:
    """A file read: name relative to the checkpoint root, role, size and sha256."""

    name: str
    path: Path
    role: str
    size: int
    sha256: str


@dataclass
class Reconstruction:
    """One original tensor rebuilt from stored parts: float32 values and bytes per part."""

    name: str
    w_hat: torch.Tensor
    parts: dict[str, int]
    scheme: str

    @property
    def nbytes(self) -> int:
        """On-disk bytes of every stored tensor this reconstruction used."""
        return sum(self.parts.values())


def sha256_file(path: Path) -> str:
    """Streaming sha256 of a file."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def file_record(root: Path, path: Path, role: str) -> FileRecord:
    """A FileRecord for `path` (hashed now)."""
    name = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
    return FileRecord(name, path, role, path.stat().st_size, sha256_file(path))


def safetensors_header(path: Path) -> tuple[dict[str, Any], int]:
    """The header dict of a safetensors file (sanity-checked) and its length incl. the prefix."""
    header = read_safetensors_header(path)
    with path.open("rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
    return header, 8 + n


def safetensors_stored(path: Path, name: str) -> list[StoredTensor]:
    """Every tensor of a safetensors file with its byte count from the header's data_offsets."""
    header, _ = safetensors_header(path)
    out = []
    for key, meta in header.items():
        if key == "__metadata__":
            continue
        try:
            begin, end = (int(v) for v in meta["data_offsets"])
            shape = tuple(int(d) for d in meta["shape"])
            dtype = str(meta["dtype"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"bad header entry for tensor {key!r}", path=path) from exc
        if end < begin:
            raise InputError(f"tensor {key!r} has negative length", path=path)
        out.append(StoredTensor(key, dtype, shape, end - begin, name))
    return out


def read_config(folder: Path) -> dict[str, Any] | None:
    """config.json of a folder as a dict, or None when absent."""
    path = folder / "config.json"
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"bad config.json: {exc}", path=path) from exc
    if not isinstance(doc, dict):
        raise InputError("config.json is not a JSON object", path=path)
    return doc


def safetensors_files(path: Path) -> tuple[Path, list[Path], list[Path]]:
    """Root, weight files and index files of a safetensors checkpoint (file or folder)."""
    if path.is_file():
        return path.resolve().parent, [path.resolve()], []
    root = path.resolve()
    index = root / "model.safetensors.index.json"
    if (root / "model.safetensors").is_file():
        return root, [root / "model.safetensors"], []
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text("utf-8"))["weight_map"]
            names = sorted(set(weight_map.values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"bad shard index: {exc}", path=index) from exc
        files = []
        for n in names:
            real = (root / str(n)).resolve()
            if not real.is_relative_to(root) or not real.is_file():
                raise InputError("shard missing or outside the folder", path=root / str(n))
            files.append(real)
        return root, files, [index]
    files = sorted(p.resolve() for p in root.glob("*.safetensors"))
    if not files:
        raise InputError("folder holds no .safetensors file", path=path)
    return root, files, []


class Checkpoint(ABC):
    """A compressed checkpoint: files read, stored tensors, and reconstructions by name."""

    format: str = "?"

    def __init__(self, root: Path):
        """Remember the root folder; subclasses fill `_records` and `_stored`."""
        self.root = root
        self._records: list[FileRecord] = []
        self._stored: list[StoredTensor] = []

    def files(self) -> list[FileRecord]:
        """Every file read (weights, config, index, ...), hashed."""
        return list(self._records)

    def add_file(self, path: Path, role: str) -> None:
        """Hash and record one more file read."""
        if all(r.path != path for r in self._records):
            self._records.append(file_record(self.root, path, role))

    def add_safetensors(self, files: list[Path], index: list[Path]) -> None:
        """Record safetensors weight files (and their stored tensors) and index files."""
        for f in files:
            self.add_file(f, "weights")
            self._stored.extend(safetensors_stored(f, f.relative_to(self.root).as_posix()))
        for f in index:
            self.add_file(f, "index")

    def stored(self) -> list[StoredTensor]:
        """Every tensor stored in the weight files."""
        return list(self._stored)

    def weight_bytes(self) -> int:
        """Total size of the weight files (tensors + headers + metadata + padding)."""
        return sum(r.size for r in self._records if r.role == "weights")

    def overhead_bytes(self) -> int:
        """Bytes of the weight files outside any tensor: headers, metadata, alignment."""
        return self.weight_bytes() - sum(s.nbytes for s in self._stored)

    @abstractmethod
    def names(self) -> list[str]:
        """Names (in the original's naming) of every tensor this checkpoint reconstructs."""

    @abstractmethod
    def load(self, name: str) -> Reconstruction:
        """The float32 reconstruction of original tensor `name`."""

    def row_shape(self, name: str) -> tuple[int, ...] | None:
        """The [out, in] shape of `name` when `load_rows` can read it in row blocks, else None
        (the reader then only reconstructs whole tensors)."""
        return None

    def load_rows(self, name: str, r0: int, r1: int) -> Reconstruction:
        """Rows r0:r1 of the reconstruction of `name` (r0, r1 multiples of 32 or the end),
        with the whole tensor's byte counts; only where `row_shape` is not None."""
        raise NotImplementedError(f"{self.format} reader has no row-block access")

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Format, scheme and settings, for the statement."""


@dataclass
class SafetensorsIndex:
    """Which file holds which tensor, over the weight files of a checkpoint."""

    files: list[Path]
    where: dict[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Read every header once (no tensor data)."""
        for f in self.files:
            header, _ = safetensors_header(f)
            for key in header:
                if key != "__metadata__":
                    self.where.setdefault(key, f)

    def get(self, name: str) -> torch.Tensor:
        """One stored tensor, as stored (memory-mapped read of just that tensor)."""
        path = self.where[name]
        try:
            with safe_open(str(path), framework="pt") as f:
                return f.get_tensor(name)
        except Exception as exc:
            raise InputError(f"cannot read tensor {name}: {exc}", path=path) from exc

    def get_cols(self, name: str, c0: int, c1: int) -> torch.Tensor:
        """Columns c0:c1 of a stored 2-D tensor (the file is mapped for this read only)."""
        path = self.where[name]
        try:
            with safe_open(str(path), framework="pt") as f:
                return f.get_slice(name)[:, c0:c1]
        except Exception as exc:
            raise InputError(f"cannot read tensor {name}: {exc}", path=path) from exc

    @contextmanager
    def opened(self) -> Iterator[SafetensorsIndex]:
        """Context for symmetry with other readers (each get opens its own handle)."""
        yield self
