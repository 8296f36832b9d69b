"""Runner registry: name -> "module:attr", imported lazily (a broken module spares the rest)."""

from __future__ import annotations

import importlib

from runners.base import Runner

RUNNERS: dict[str, str] = {
    "static": "runners.static:RUNNER",
    "pareto": "runners.pareto:RUNNER",
    "pq": "runners.pq:RUNNER",
    "hessian": "runners.hessian:RUNNER",
    "proxy": "runners.proxy:RUNNER",
    "entropy": "runners.entropy:RUNNER",
    "memory": "runners.memory:RUNNER",
    "ecsq": "runners.ecsq:RUNNER",
    "tcq": "runners.tcq:RUNNER",
}

try:  # the ledger's own usage error when the core is present
    from ledger.errors import UsageError as _UnknownRunner
except ImportError:  # pragma: no cover - ledger core missing
    _UnknownRunner = ValueError  # type: ignore[assignment,misc]


def list_runners() -> list[str]:
    """Names of all registered runners, in registry order."""
    return list(RUNNERS)


def get_runner(name: str) -> Runner:
    """Import and return the runner called `name`."""
    target = RUNNERS.get(name)
    if target is None:
        known = ", ".join(RUNNERS)
        raise _UnknownRunner(f"unknown runner {name!r} (known: {known})")
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr)


def load_runners() -> dict[str, Runner | Exception]:
    """Every registered runner, or the exception that stopped it from importing."""
    out: dict[str, Runner | Exception] = {}
    for name in RUNNERS:
        try:
            out[name] = get_runner(name)
        except Exception as exc:  # a broken module must not hide the others
            out[name] = exc
    return out
