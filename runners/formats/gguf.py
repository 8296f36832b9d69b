"""GGUF files (llama.cpp): read with the `gguf` package, dequantized by `gguf.quants`.

`GGUFReader` memory-maps the file; each tensor's bytes are its `n_bytes` at its own
`data_offset`, and everything else in the file (magic, key/value metadata, tensor infos,
alignment padding) is header bytes. Tensor names are mapped back to the original's
names with the package's own `TensorNameMap` for the file's `general.architecture`; for
Llama-family models, llama.cpp's convert script permutes the rows of attn_q/attn_k for
its rotary layout, so those are un-permuted (as transformers' GGUF loader does).
"""

from __future__ import annotations

import mmap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ledger.errors import InputError
from runners.formats.base import Checkpoint, Reconstruction, StoredTensor

GGUF_MAGIC = b"GGUF"
_PERMUTED_ARCHS = {"llama"}


def _library() -> Any:
    """The gguf package, or a clear InputError when it is missing."""
    try:
        import gguf
    except ImportError as exc:
        raise InputError(
            "reading a GGUF file needs the `gguf` package (pip install 'evledger[formats]')"
        ) from exc
    return gguf


def field_value(reader: Any, key: str) -> Any:
    """A scalar or string metadata value of a GGUFReader, or None."""
    f = reader.fields.get(key)
    if f is None:
        return None
    try:
        return f.contents()
    except Exception:
        return None


def unpermute_rows(w: torch.Tensor, n_head: int) -> torch.Tensor:
    """Undo llama.cpp's rotary row permutation of a q/k projection [n_head·hd, in]."""
    rows = w.shape[0]
    return w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


class GGUFCheckpoint(Checkpoint):
    """One .gguf file; names mapped to the original's when `original` names are given."""

    format = "gguf"

    def __init__(self, path: Path, original: Sequence[str] = ()):
        """Open (memory-map) the file and build the name map; nothing is dequantized yet."""
        gguf = _library()
        path = path.resolve()
        super().__init__(path.parent)
        try:
            self.reader = gguf.GGUFReader(str(path), "r")
        except Exception as exc:
            raise InputError(f"not a readable GGUF file: {exc}", path=path) from exc
        self.add_file(path, "weights")
        self.library_version = _dist_version("gguf")
        self.arch = str(field_value(self.reader, "general.architecture") or "")
        self.tensors = {t.name: t for t in self.reader.tensors}
        rel = path.name
        for t in self.reader.tensors:
            shape = tuple(int(d) for d in reversed([int(x) for x in t.shape]))
            self._stored.append(
                StoredTensor(t.name, t.tensor_type.name, shape, int(t.n_bytes), rel)
            )
        self.n_head = _int(field_value(self.reader, f"{self.arch}.attention.head_count"))
        self.n_head_kv = _int(field_value(self.reader, f"{self.arch}.attention.head_count_kv"))
        self.to_original: dict[str, str] = {}
        blocks = _int(field_value(self.reader, f"{self.arch}.block_count")) or 0
        arch_enum = {v: k for k, v in gguf.MODEL_ARCH_NAMES.items()}.get(self.arch)
        if arch_enum is not None and original:
            tmap = gguf.get_tensor_name_map(arch_enum, blocks)
            for name in original:
                g = tmap.get_name(name, try_suffixes=(".weight", ".bias"))
                if g is not None and g in self.tensors and g not in self.to_original:
                    self.to_original[g] = name
        self.from_original = {v: k for k, v in self.to_original.items()}

    def names(self) -> list[str]:
        """Every tensor, under its original name where the map knows it."""
        return [self.to_original.get(t.name, t.name) for t in self.reader.tensors]

    def load(self, name: str) -> Reconstruction:
        """Dequantize one tensor with `gguf.quants.dequantize` (float32, numpy order)."""
        gguf = _library()
        gname = self.from_original.get(name, name)
        t = self.tensors.get(gname)
        if t is None:
            raise KeyError(name)
        shape = tuple(int(d) for d in reversed([int(x) for x in t.shape]))
        try:
            arr = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type)
        except NotImplementedError as exc:
            raise InputError(f"gguf cannot dequantize {t.tensor_type.name} ({gname})") from exc
        w = torch.from_numpy(np.array(arr, dtype=np.float32, copy=True)).reshape(shape)
        del arr
        self._release(int(t.data_offset), int(t.n_bytes))
        if self.arch in _PERMUTED_ARCHS and w.dim() == 2:
            if gname.endswith("attn_q.weight") and self.n_head:
                w = unpermute_rows(w, self.n_head)
            elif gname.endswith("attn_k.weight") and (self.n_head_kv or self.n_head):
                w = unpermute_rows(w, self.n_head_kv or self.n_head or 1)
        return Reconstruction(name, w, {gname: int(t.n_bytes)}, t.tensor_type.name)

    def _release(self, offset: int, nbytes: int) -> None:
        """Drop the mapped pages of one tensor once it is copied (keeps RSS flat in file size)."""
        mm = getattr(self.reader.data, "_mmap", None)
        if mm is None or not hasattr(mm, "madvise"):
            return
        page = mmap.PAGESIZE
        start = offset - offset % page
        try:
            mm.madvise(mmap.MADV_DONTNEED, start, offset + nbytes - start)
        except (OSError, ValueError):
            pass

    def describe(self) -> dict[str, Any]:
        """Architecture, tensor types used (with counts), name mapping coverage."""
        types: dict[str, int] = {}
        for t in self.reader.tensors:
            types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
        return {
            "format": "gguf",
            "reader": f"gguf {self.library_version} (GGUFReader, gguf.quants.dequantize)",
            "architecture": self.arch,
            "tensor_types": dict(sorted(types.items())),
            "names_mapped": len(self.to_original),
            "rows_unpermuted": self.arch in _PERMUTED_ARCHS,
        }


def _int(v: Any) -> int | None:
    """An int metadata value, else None."""
    try:
        return int(v) if v is not None else None
    except (TypeError, ValueError):
        return None


def _dist_version(dist: str) -> str:
    """Installed version of a distribution, or '?'."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"
