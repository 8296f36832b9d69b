"""What changed between two entries: params, metrics, per-matrix rows, environment, subjects."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ledger.chain import Entry
from ledger.evidence import direction, metrics_of, predicate_of, runner_of
from ledger.statement import Legacy, RunnerEvidence

SECTIONS = ("params", "metrics", "rows", "environment", "subjects")
ROW_KEYS = ("name", "matrix", "tensor", "layer")


@dataclass(frozen=True)
class EntryRef:
    """Which entry a side of the diff is."""

    seq: int
    digest: str
    runner: str | None
    kind: str
    time: str


@dataclass(frozen=True)
class Change:
    """One key's old and new value; `status` is same/changed/added/removed."""

    key: str
    old: Any
    new: Any
    status: str
    delta: float | None = None
    pct: float | None = None
    verdict: str = ""  # better / worse / "" (unknown direction or not comparable)

    @property
    def changed(self) -> bool:
        """True unless both sides hold the same value."""
        return self.status != "same"

    def to_json(self) -> dict[str, Any]:
        """DVC-like {"old", "new", "diff", "pct", ...}."""
        doc: dict[str, Any] = {"old": self.old, "new": self.new, "status": self.status}
        if self.delta is not None:
            doc["diff"] = self.delta
        if self.pct is not None:
            doc["pct"] = self.pct
        if self.verdict:
            doc["verdict"] = self.verdict
        return doc


@dataclass(frozen=True)
class RowDiff:
    """One per-matrix row matched by name across the two entries."""

    name: str
    status: str
    changes: tuple[Change, ...]

    @property
    def changed(self) -> bool:
        """True if the row was added, removed, or any value changed."""
        return self.status != "same"


@dataclass(frozen=True)
class EntryDiff:
    """Everything that differs between entry `a` (old) and `b` (new); unchanged keys included."""

    a: EntryRef
    b: EntryRef
    params: tuple[Change, ...]
    metrics: tuple[Change, ...]
    rows: tuple[RowDiff, ...]
    environment: tuple[Change, ...]
    subjects: tuple[Change, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def changed(self) -> bool:
        """True if anything at all differs."""
        return any(
            c.changed
            for s in ("params", "metrics", "environment", "subjects")
            for c in getattr(self, s)
        ) or any(r.changed for r in self.rows)

    def section(self, name: str, *, include_all: bool = False) -> list[Change]:
        """Changes of one flat section (only the changed ones unless include_all)."""
        return [c for c in getattr(self, name) if include_all or c.changed]

    def row_diffs(self, *, include_all: bool = False) -> list[RowDiff]:
        """Row diffs (only changed rows, each with only changed values, unless include_all)."""
        if include_all:
            return list(self.rows)
        return [
            RowDiff(r.name, r.status, tuple(c for c in r.changes if c.changed))
            for r in self.rows
            if r.changed
        ]

    def to_json(self, *, include_all: bool = False) -> dict[str, Any]:
        """One JSON-ready document: {a, b, params, metrics, rows, environment, subjects}."""
        doc: dict[str, Any] = {
            "a": self.a.__dict__,
            "b": self.b.__dict__,
            "changed": self.changed,
            "notes": list(self.notes),
        }
        for name in ("params", "metrics", "environment", "subjects"):
            doc[name] = {c.key: c.to_json() for c in self.section(name, include_all=include_all)}
        doc["rows"] = {
            r.name: {"status": r.status, "values": {c.key: c.to_json() for c in r.changes}}
            for r in self.row_diffs(include_all=include_all)
        }
        return doc


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> dotted keys; lists kept whole."""
    if not isinstance(value, dict):
        return {prefix: value} if prefix else {}
    out: dict[str, Any] = {}
    for key, item in value.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(item, dict) and item:
            out.update(_flatten(item, path))
        else:
            out[path] = item
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b) and not (_is_number(a) and _is_number(b)):
        return False
    if isinstance(a, dict | list):
        return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    return bool(a == b)


_MISSING = object()


def compare(key: str, old: Any, new: Any, *, directional: bool = False) -> Change:
    """One Change; numbers get Δ and Δ%, and a better/worse verdict when `directional`."""
    if old is _MISSING:
        return Change(key, None, new, "added")
    if new is _MISSING:
        return Change(key, old, None, "removed")
    if _same(old, new):
        return Change(key, old, new, "same")
    delta = pct = None
    verdict = ""
    sign = direction(key) if directional else 0
    if _is_number(old) and _is_number(new):
        delta = float(new) - float(old)
        pct = (delta / abs(float(old)) * 100.0) if old != 0 else None
        if sign:
            verdict = "better" if delta * sign > 0 else "worse"
    elif isinstance(old, bool) and isinstance(new, bool) and sign:
        verdict = "better" if (int(new) - int(old)) * sign > 0 else "worse"
    return Change(key, old, new, "changed", delta, pct, verdict)


def compare_maps(
    old: dict[str, Any], new: dict[str, Any], *, directional: bool = False
) -> tuple[Change, ...]:
    """Changes for every key of either map, sorted by key."""
    keys = sorted(set(old) | set(new))
    return tuple(
        compare(k, old.get(k, _MISSING), new.get(k, _MISSING), directional=directional)
        for k in keys
    )


def _row_key(row: dict[str, Any]) -> str | None:
    return next((k for k in ROW_KEYS if isinstance(row.get(k), str)), None)


def _rows(entry: Entry) -> dict[str, dict[str, Any]]:
    """Per-matrix rows by name (first of name/matrix/tensor/layer; else their position)."""
    pred = predicate_of(entry)
    if not isinstance(pred, RunnerEvidence):
        return {}
    out: dict[str, dict[str, Any]] = {}
    for i, row in enumerate(pred.rows):
        key = _row_key(dict(row))
        name = str(row[key]) if key else f"#{i}"
        out[name] = {k: v for k, v in row.items() if k != key}
    return out


def diff_rows(old: dict[str, Any], new: dict[str, Any]) -> tuple[RowDiff, ...]:
    """Per-matrix rows matched by name (in the new entry's order, removed rows last)."""
    out = []
    names = list(new) + [n for n in old if n not in new]
    for name in names:
        if name not in old:
            changes = compare_maps({}, _flatten(new[name]))
            out.append(RowDiff(name, "added", changes))
        elif name not in new:
            changes = compare_maps(_flatten(old[name]), {})
            out.append(RowDiff(name, "removed", changes))
        else:
            changes = compare_maps(_flatten(old[name]), _flatten(new[name]), directional=True)
            status = "changed" if any(c.changed for c in changes) else "same"
            out.append(RowDiff(name, status, changes))
    return tuple(out)


def _params(entry: Entry) -> dict[str, Any]:
    pred = predicate_of(entry)
    return _flatten(dict(pred.params)) if isinstance(pred, RunnerEvidence) else {}


def _environment(entry: Entry) -> dict[str, Any]:
    pred = predicate_of(entry)
    if isinstance(pred, RunnerEvidence):
        return _flatten(dict(pred.environment))
    if isinstance(pred, Legacy):
        env = pred.document.get("env")  # legacy POC files keep it under `env`
        return _flatten(env) if isinstance(env, dict) else {}
    return {}


def _subjects(entry: Entry) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, s in enumerate(entry.subjects):
        name = s.name if s.name is not None else f"#{i}"
        out[name] = "sha256:" + s.sha256 if s.sha256 else json.dumps(dict(s.digest), sort_keys=True)
    return out


def entry_ref(entry: Entry) -> EntryRef:
    """The side-of-diff summary of an entry."""
    return EntryRef(entry.seq, entry.digest, runner_of(entry), entry.kind, entry.time)


def diff_entries(a: Entry, b: Entry) -> EntryDiff:
    """Pure: what changed from entry `a` (old) to entry `b` (new); no printing, no IO."""
    notes = []
    ra, rb = runner_of(a), runner_of(b)
    if ra != rb:
        notes.append(f"different runners: {ra} vs {rb}")
    if a.predicate_type != b.predicate_type:
        notes.append(f"different predicate types: {a.predicate_type} vs {b.predicate_type}")
    return EntryDiff(
        a=entry_ref(a),
        b=entry_ref(b),
        params=compare_maps(_params(a), _params(b)),
        metrics=compare_maps(dict(metrics_of(a)), dict(metrics_of(b)), directional=True),
        rows=diff_rows(_rows(a), _rows(b)),
        environment=compare_maps(_environment(a), _environment(b)),
        subjects=compare_maps(_subjects(a), _subjects(b)),
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------- rendering helpers
def fmt_value(value: Any, precision: int = 5) -> str:
    """A value for a table cell: floats rounded to `precision` decimals (DVC's --precision)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        text = f"{round(value, precision):.{precision}f}".rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def fmt_delta(change: Change, precision: int = 5) -> tuple[str, str]:
    """(Δ, Δ%) cells; signed, '-' where not numeric."""
    if change.delta is None:
        return "-", "-"
    d = fmt_value(change.delta, precision)
    d = d if d.startswith("-") or d == "0" else "+" + d
    if change.pct is None:
        return d, "-"
    p = f"{change.pct:+.{min(precision, 2)}f}%"
    return d, p


def table_rows(
    diff: EntryDiff, *, include_all: bool = False, precision: int = 5
) -> list[tuple[str, str, str, str, str, str, str]]:
    """(section, key, old, new, Δ, Δ%, verdict) rows for text/Markdown/TUI tables."""
    out = []
    for name in ("params", "metrics"):
        for c in diff.section(name, include_all=include_all):
            out.append((name, c.key, *_cells(c, precision)))
    for r in diff.row_diffs(include_all=include_all):
        if r.status in ("added", "removed"):
            present = ("-", "row") if r.status == "added" else ("row", "-")
            out.append(("rows", r.name, *present, "-", "-", r.status))
            continue
        for c in r.changes:
            out.append(("rows", f"{r.name}.{c.key}", *_cells(c, precision)))
    for name in ("environment", "subjects"):
        for c in diff.section(name, include_all=include_all):
            out.append((name, c.key, *_cells(c, precision)))
    return out


def _cells(c: Change, precision: int) -> tuple[str, str, str, str, str]:
    d, p = fmt_delta(c, precision)
    verdict = c.verdict or (c.status if c.status in ("added", "removed") else "")
    return fmt_value(c.old, precision), fmt_value(c.new, precision), d, p, verdict


__all__ = [
    "Change",
    "EntryDiff",
    "EntryRef",
    "RowDiff",
    "compare",
    "compare_maps",
    "diff_entries",
    "fmt_value",
    "table_rows",
]
