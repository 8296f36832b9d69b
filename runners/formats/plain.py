"""A plain safetensors of dequantized weights, for formats evledger cannot read itself.

The weights are taken as given; their on-disk size says nothing about the compressed
artifact, so the byte count comes from the user (`claimed_bytes`) and the statement marks
it as claimed, not measured.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from runners.formats.base import (
    Checkpoint,
    Reconstruction,
    SafetensorsIndex,
    safetensors_files,
)


class PlainCheckpoint(Checkpoint):
    """Dequantized float weights in safetensors (file or folder)."""

    format = "plain"

    def __init__(self, path: Path):
        """Read the headers."""
        root, files, index = safetensors_files(path)
        super().__init__(root)
        self.add_safetensors(files, index)
        self.index = SafetensorsIndex(files)
        self._by_name = {s.name: s for s in self._stored}

    def names(self) -> list[str]:
        """Every stored tensor."""
        return [s.name for s in self._stored]

    def load(self, name: str) -> Reconstruction:
        """One tensor as float32; its parts are its own (dequantized) bytes."""
        if name not in self._by_name:
            raise KeyError(name)
        t = self.index.get(name).to(torch.float32)
        return Reconstruction(name, t, {name: self._by_name[name].nbytes}, "dequantized")

    def describe(self) -> dict[str, Any]:
        """Marks the weights as dequantized and the bytes as claimed."""
        return {
            "format": "plain",
            "reader": "safetensors (dequantized weights as given)",
            "bytes": "claimed by the user (claimed_bytes), not measured from a compressed file",
        }
