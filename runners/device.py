"""Device selection for runners that do heavy math: cpu (default), cuda, or auto.

`run_runner` sets the device for one measurement (`using`); runners ask `current()` and
move their matmuls and forward passes there. `describe()` records the device, its name and
the determinism settings in the statement's environment.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import torch

from ledger.errors import UsageError

DEVICES = ("cpu", "cuda", "auto")
_current: ContextVar[str] = ContextVar("evledger_device", default="cpu")


def resolve(requested: str) -> str:
    """'cpu' or 'cuda' for a requested device; cuda without a GPU is a UsageError."""
    if requested not in DEVICES:
        raise UsageError(f"--device must be one of {', '.join(DEVICES)}, got {requested!r}")
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available (torch sees none)")
    return requested


def current() -> torch.device:
    """The device of the measurement in progress (cpu outside one)."""
    return torch.device(_current.get())


@contextmanager
def using(device: str) -> Iterator[None]:
    """Run a block with `device` ('cpu' or 'cuda') as the current device."""
    token = _current.set(device)
    prev = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    if device == "cuda" and prev is None:  # needed by deterministic cuBLAS
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"
    try:
        yield
    finally:
        _current.reset(token)
        if device == "cuda" and prev is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)


def describe(requested: str, device: str) -> dict[str, Any]:
    """Device, its name and the determinism settings in force."""
    out: dict[str, Any] = {
        "requested": requested,
        "type": device,
        "deterministic_algorithms": True,
    }
    if device == "cuda":
        out["name"] = torch.cuda.get_device_name(0)
        out["cuda"] = str(torch.version.cuda)
        out["cudnn_deterministic"] = True
        out["cudnn_benchmark"] = False
        out["cublas_workspace_config"] = os.environ.get("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    else:
        out["name"] = platform.processor() or platform.machine()
    return out
