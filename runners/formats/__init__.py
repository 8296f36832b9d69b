"""Readers for compressed checkpoints: what is stored on disk, and each weight dequantized.

One module per format (`compressed_tensors`, `gptq` for GPTQ/AWQ packed layouts, `gguf`,
`plain` for a safetensors of dequantized weights plus a byte count). Every reader gives the
same view (`Checkpoint`): the stored tensors with their on-disk byte counts taken from the
file's own header and offsets, the header/metadata bytes, every file it read, and for each
original weight name the float32 reconstruction and the stored tensors it was rebuilt from.
`open_checkpoint` detects the format; `detect` only names it (used to refuse compressed
checkpoints in the other runners).
"""

from __future__ import annotations

from runners.formats.base import (
    Checkpoint,
    FileRecord,
    Reconstruction,
    StoredTensor,
)
from runners.formats.detect import describe_compressed, detect, open_checkpoint

__all__ = [
    "Checkpoint",
    "FileRecord",
    "Reconstruction",
    "StoredTensor",
    "describe_compressed",
    "detect",
    "open_checkpoint",
]
