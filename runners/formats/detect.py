"""Recognise a compressed checkpoint (without a library) and open it with the right reader."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ledger.errors import InputError
from runners.formats.base import Checkpoint, safetensors_files, safetensors_header

FORMATS = ("auto", "compressed-tensors", "gptq", "awq", "gguf", "plain")
_CT_SUFFIXES = (
    "weight_packed",
    "weight_scale",
    "weight_zero_point",
    "weight_shape",
    "weight_g_idx",
)
_CT_QPARAMS = {
    f"{kind}_{p}"
    for kind in ("weight", "input", "output")
    for p in ("scale", "zero_point", "global_scale")
} | {"k_scale", "v_scale"}
_GPTQ_SUFFIXES = ("qweight", "qzeros", "g_idx")


def _is_gguf(path: Path) -> bool:
    """Whether a file starts with the GGUF magic."""
    try:
        with path.open("rb") as fh:
            return fh.read(4) == b"GGUF"
    except OSError:
        return False


def _quant_config(folder: Path) -> dict | None:
    """quantization_config of folder/config.json, else quantize_config.json, else None."""
    for name, key in (("config.json", "quantization_config"), ("quantize_config.json", None)):
        p = folder / name
        if not p.is_file():
            continue
        try:
            doc = json.loads(p.read_text("utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict):
            qc = doc.get(key) if key else doc
            if isinstance(qc, dict):
                return qc
    return None


def detect(path: Path) -> tuple[str, str] | None:
    """(format, evidence) when `path` is a compressed checkpoint, else None.

    Evidence is what gave it away: GGUF magic, a quantization_config, or tensor names
    such as `*.qweight` (GPTQ/AWQ) or `*.weight_scale` / `*.weight_packed` (compressed-tensors).
    """
    path = Path(path)
    if path.is_file() and _is_gguf(path):
        return "gguf", "GGUF magic"
    if path.is_dir():
        ggufs = sorted(path.glob("*.gguf"))
        if ggufs and not list(path.glob("*.safetensors")):
            return "gguf", f"GGUF file {ggufs[0].name}"
    folder = path if path.is_dir() else path.parent
    qc = _quant_config(folder)
    if qc is not None:
        method = str(qc.get("quant_method", "")).lower()
        fmt = {"compressed-tensors": "compressed-tensors", "gptq": "gptq", "awq": "awq"}.get(
            method, f"other ({method or 'unknown quant_method'})"
        )
        return fmt, f"quantization_config (quant_method={method or '?'})"
    try:
        _, files, _ = safetensors_files(path)
    except InputError:
        return None
    for f in files:
        try:
            header, _ = safetensors_header(f)
        except InputError:
            return None
        for key in header:
            tail = key.rpartition(".")[2]
            if tail in _GPTQ_SUFFIXES:
                return "gptq", f"tensor {key}"
            if tail in _CT_SUFFIXES or tail in _CT_QPARAMS:
                return "compressed-tensors", f"tensor {key}"
    return None


def describe_compressed(path: Path) -> str | None:
    """One line saying why `path` is a compressed checkpoint, or None."""
    found = detect(path)
    if found is None:
        return None
    fmt, evidence = found
    return f"is a compressed checkpoint ({fmt}: {evidence})"


def open_checkpoint(path: Path, fmt: str = "auto", original: Sequence[str] = ()) -> Checkpoint:
    """The reader for `path`; `fmt` forces one (see FORMATS), `original` names map GGUF."""
    path = Path(path)
    if not path.exists():
        raise InputError("compressed checkpoint not found", path=path)
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    if fmt == "auto":
        found = detect(path)
        if found is None:
            raise InputError(
                "not a recognised compressed checkpoint (no GGUF magic, quantization_config "
                "or packed tensors); for dequantized weights use format=plain with claimed_bytes",
                path=path,
            )
        fmt = found[0]
    if fmt == "gguf":
        from runners.formats.gguf import GGUFCheckpoint

        target = path
        if path.is_dir():
            ggufs = sorted(path.glob("*.gguf"))
            if len(ggufs) != 1:
                raise InputError("folder must hold exactly one .gguf file", path=path)
            target = ggufs[0]
        return GGUFCheckpoint(target, original)
    if fmt == "compressed-tensors":
        from runners.formats.compressed_tensors import CompressedTensorsCheckpoint

        return CompressedTensorsCheckpoint(path)
    if fmt in ("gptq", "awq"):
        from runners.formats.gptq import PackedCheckpoint

        return PackedCheckpoint(path)
    if fmt == "plain":
        from runners.formats.plain import PlainCheckpoint

        return PlainCheckpoint(path)
    raise InputError(f"compressed format {fmt} is not supported; use format=plain", path=path)
