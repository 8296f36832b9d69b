"""Runner protocol, parameter declarations and the result of one measurement."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ledger.errors import UsageError

if TYPE_CHECKING:
    from runners.model import ModelSource

ProgressFn = Callable[[str, int, int], None]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def no_progress(label: str, done: int, total: int) -> None:
    """Progress callback that ignores everything."""


@dataclass(frozen=True)
class Param:
    """One runner parameter: name, default, help text and type ("int", "float", "str", "bool")."""

    name: str
    default: Any
    help: str
    type: str = "str"
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] | None = None

    def parse(self, raw: Any) -> Any:
        """Convert a raw (usually string) value to this parameter's type, or raise UsageError."""
        try:
            value = self._convert(raw)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"param {self.name}: {raw!r} is not a valid {self.type}") from exc
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(str(c) for c in self.choices)
            raise UsageError(f"param {self.name}: {value!r} is not one of {allowed}")
        if self.minimum is not None and value < self.minimum:
            raise UsageError(f"param {self.name}: {value!r} is below the minimum {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise UsageError(f"param {self.name}: {value!r} is above the maximum {self.maximum}")
        return value

    def _convert(self, raw: Any) -> Any:
        """Type conversion without range checks."""
        if self.type == "int":
            if isinstance(raw, bool):
                raise TypeError("bool is not an int")
            if isinstance(raw, float):
                if not raw.is_integer():
                    raise ValueError("not an integer")
                return int(raw)
            return int(str(raw).strip(), 10) if isinstance(raw, str) else int(raw)
        if self.type == "float":
            value = float(raw)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError("not finite")
            return value
        if self.type == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError("not a boolean")
        if self.type == "str":
            return str(raw)
        raise ValueError(f"unknown param type {self.type}")

    def describe(self) -> dict[str, Any]:
        """JSON-friendly description for `evledger runners --json`."""
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "default": self.default,
            "help": self.help,
        }
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        if self.choices is not None:
            out["choices"] = list(self.choices)
        return out


@dataclass
class Measurement:
    """What one `measure` call produced: metrics, per-matrix rows, a digest of reconstructions."""

    metrics: dict[str, float | int | bool]
    rows: list[dict[str, Any]]
    reconstruction_digest: str
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Runner(Protocol):
    """A measurement method; `measure` does one measurement in fresh state."""

    name: str
    version: str
    description: str
    params: tuple[Param, ...]

    def measure(
        self, model: ModelSource, params: dict[str, Any], progress: ProgressFn
    ) -> Measurement:
        """Measure once on `model` with fully resolved `params`."""
        ...


def resolve_params(runner: Runner, given: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults overlaid with `given` (parsed by each Param); unknown names raise UsageError."""
    given = dict(given or {})
    known = {p.name: p for p in runner.params}
    unknown = sorted(set(given) - set(known))
    if unknown:
        names = ", ".join(sorted(known)) or "(none)"
        raise UsageError(
            f"runner {runner.name}: unknown param {', '.join(unknown)} (known: {names})"
        )
    out: dict[str, Any] = {}
    for name, param in known.items():
        out[name] = param.parse(given[name]) if name in given else param.default
    return out
