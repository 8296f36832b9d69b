"""Runner registry: built-ins by "module:attr", plug-ins by the `evledger.runners` entry points.

Everything is imported lazily, and a runner that fails to import (or a plug-in that does not
follow the protocol) is reported as its exception, never hiding the others.

Plug-in protocol: a package declares ``[project.entry-points."evledger.runners"]
NAME = "pkg.module:RUNNER"``, where RUNNER has `name` (== NAME), `version`, `description`,
`params` (a tuple of `runners.base.Param`) and `measure(model, params, progress)` returning
a `runners.base.Measurement`. Its statements use the predicate type
`https://evledger.dev/predicates/plugin/v1` and record the plug-in's package and version.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from runners.base import Runner

GROUP = "evledger.runners"
RUNNERS: dict[str, str] = {
    "static": "runners.static:RUNNER",
    "pareto": "runners.pareto:RUNNER",
    "pq": "runners.pq:RUNNER",
    "hessian": "runners.hessian:RUNNER",
    "proxy": "runners.proxy:RUNNER",
    "entropy": "runners.entropy:RUNNER",
    "memory": "runners.memory:RUNNER",
    "compare": "runners.compare:RUNNER",
    "ecsq": "runners.ecsq:RUNNER",
    "tcq": "runners.tcq:RUNNER",
}

try:  # the ledger's own usage error when the core is present
    from ledger.errors import UsageError as _UnknownRunner
except ImportError:  # pragma: no cover - ledger core missing
    _UnknownRunner = ValueError  # type: ignore[assignment,misc]


@dataclass(frozen=True)
class Plugin:
    """Where a plug-in runner comes from: entry point, distribution and its version."""

    name: str
    entry_point: str
    package: str
    version: str

    def describe(self) -> dict[str, str]:
        """JSON form for `evledger runners` and the statement."""
        return {"entry_point": self.entry_point, "package": self.package, "version": self.version}


def plugins() -> dict[str, Plugin]:
    """Plug-ins registered under the entry-point group (built-in names are not overridden)."""
    out: dict[str, Plugin] = {}
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        if ep.name in RUNNERS or ep.name in out:
            continue
        dist = getattr(ep, "dist", None)
        out[ep.name] = Plugin(
            ep.name,
            ep.value,
            str(dist.metadata["Name"]) if dist is not None else "?",
            str(dist.version) if dist is not None else "?",
        )
    return out


def _entry_point(name: str) -> EntryPoint | None:
    """The entry point called `name` in the group, if any."""
    for ep in entry_points(group=GROUP):
        if ep.name == name:
            return ep
    return None


def list_runners() -> list[str]:
    """Names of all runners: built-ins in registry order, then plug-ins by name."""
    return list(RUNNERS) + list(plugins())


def _check_protocol(name: str, runner: object) -> Runner:
    """The runner, or TypeError when it does not follow the protocol."""
    missing = [
        a for a in ("name", "version", "description", "params", "measure") if not hasattr(runner, a)
    ]
    if missing:
        raise TypeError(f"plug-in {name!r} lacks {', '.join(missing)}")
    if runner.name != name:  # type: ignore[attr-defined]
        raise TypeError(f"plug-in {name!r} calls itself {runner.name!r}")  # type: ignore[attr-defined]
    return runner  # type: ignore[return-value]


def get_runner(name: str) -> Runner:
    """Import and return the runner called `name` (built-in or plug-in)."""
    target = RUNNERS.get(name)
    if target is not None:
        module_name, _, attr = target.partition(":")
        module = importlib.import_module(module_name)
        return getattr(module, attr)
    ep = _entry_point(name)
    if ep is None:
        known = ", ".join(list_runners())
        raise _UnknownRunner(f"unknown runner {name!r} (known: {known})")
    try:
        return _check_protocol(name, ep.load())
    except Exception as exc:  # the plug-in's own fault: one line, exit 2
        raise _UnknownRunner(
            f"plug-in runner {name!r} ({ep.value}) cannot be loaded: {type(exc).__name__}: {exc}"
        ) from exc


def plugin_of(name: str) -> Plugin | None:
    """The plug-in record of runner `name`, or None for a built-in."""
    if name in RUNNERS:
        return None
    return plugins().get(name)


def load_runners() -> dict[str, Runner | Exception]:
    """Every runner, or the exception that stopped it from importing."""
    out: dict[str, Runner | Exception] = {}
    for name in list_runners():
        try:
            out[name] = get_runner(name)
        except Exception as exc:  # a broken module must not hide the others
            out[name] = exc
    return out
