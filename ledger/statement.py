"""The typed statement model: an in-toto Statement v1 and one frozen dataclass per predicate
family evledger reads (runner evidence, reproduction, legacy, import, genesis, key-add,
key-revoke, policy).

`Statement.from_dict(doc)` never raises on odd content: what a family does not know stays in
`extra` and comes back from `to_dict()` unchanged (unknown fields survive a round trip, as in
python-tuf), so no stored byte changes. Field meanings live here and nowhere else: the legacy POC
mapping (`LEGACY_METRICS`), the reproduction's claim reference, an import's foreign statement.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

import orjson

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_PREFIX = "https://evledger.dev/predicates/"

Metric = float | int | bool
Metrics = dict[str, Metric]

#: legacy schema_id -> {our metric name: path into the original document}; the one place where
#: legacy POC field names are mapped to ours (gate, diff, audit and report all read through it)
LEGACY_METRICS: dict[str, dict[str, tuple[str, ...]]] = {
    "evidence.v43.v1": {
        "go": ("summary", "go"),
        "cos_min": ("summary", "cos_min"),
        "ratio_fp16_effective": ("summary", "ratio_fp16_effective_min"),
        "pareto_vs_v39_high_ratio": ("summary", "pareto_vs_v39_high_ratio"),
        "pareto_vs_v39_high_cos": ("summary", "pareto_vs_v39_high_cos"),
        "seed_entropy_delta": ("summary", "seed_entropy_delta"),
        "crossblock_enabled": ("summary", "crossblock_enabled"),
        "colddust_enabled": ("summary", "colddust_enabled"),
        "bytes_total": ("summary", "bytes_total"),
        "bytes_field": ("summary", "bytes_field"),
        "determinism_delta": ("summary", "determinism_delta"),
        "entropy_before": ("phases", "seed", "entropy_before"),
        "entropy_after": ("phases", "seed", "entropy_after"),
        "cos_min_at_same_ratio": ("phases", "seed", "cos_min_at_same_ratio"),
        "cos_min_lift": ("phases", "crossblock", "cos_min_lift"),
        "effective_ratio": ("phases", "colddust", "effective_ratio"),
        "ppl_change": ("phases", "colddust", "ppl_change"),
    },
    "evidence.breakthrough.v1": {
        "go": ("summary", "go"),
        "entropy_gain_ok": ("summary", "entropy_gain_ok"),
        "determinism_delta": ("summary", "determinism_delta"),
        "bytes_total": ("summary", "bytes_total"),
        "bytes_field": ("summary", "bytes_field"),
        "bytes_patch": ("summary", "bytes_patch"),
        "bytes_entropy": ("summary", "bytes_entropy"),
        "determinism_checked": ("env", "determinism_checked"),
    },
    "evidence.v300.vajra.v1": {
        "ratio_fp16_effective": ("compression_results", "compression_ratio"),
        "cos_min": ("compression_results", "cosine_similarity"),
    },
    "evidence.v400.resonance.v1": {
        "ratio_fp16_effective": ("compression_results", "compression_ratio"),
        "cos_min": ("compression_results", "cosine_similarity"),
    },
}

#: legacy schema_id -> the runner of ours that measures the same thing (None: no counterpart)
LEGACY_RUNNERS: dict[str, str | None] = {
    "evidence.v43.v1": "proxy",
    "evidence.breakthrough.v1": "entropy",
    "evidence.v300.vajra.v1": None,
    "evidence.v400.resonance.v1": None,
}

_BIG_INT = re.compile(r"-?[0-9]{16,}")


def metric_value(value: Any) -> Metric | None:
    """A metric value: bool, int, float, or a big integer stored as a decimal string."""
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, str) and _BIG_INT.fullmatch(value):
        return int(value)
    return None


def flat_metrics(metrics: Any) -> Metrics:
    """Numeric/bool items of a metrics mapping (other values are dropped)."""
    if not isinstance(metrics, dict):
        return {}
    out: Metrics = {}
    for key, value in metrics.items():
        num = metric_value(value)
        if num is not None:
            out[str(key)] = num
    return out


def _dig(doc: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(part)
    return doc


def _dict(value: Any) -> dict[str, Any]:
    """The value if it is a JSON object (not copied: statements are read, never mutated)."""
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# --------------------------------------------------------------------------- small parts
@dataclass(frozen=True)
class Subject:
    """An in-toto ResourceDescriptor: what the statement is about, matched by digest."""

    name: str | None
    digest: Mapping[str, str]
    raw: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, doc: Any) -> Subject:
        """From a subject object (odd values become empty; `raw` keeps them)."""
        raw = _dict(doc)
        digest = {str(k): v for k, v in _dict(raw.get("digest")).items() if isinstance(v, str)}
        return cls(_str(raw.get("name")), digest, raw)

    def to_dict(self) -> dict[str, Any]:
        """The subject object exactly as it was read."""
        return dict(self.raw) if self.raw else {"name": self.name, "digest": dict(self.digest)}

    @property
    def sha256(self) -> str | None:
        """The sha256 digest (hex), if the subject has one."""
        return self.digest.get("sha256")


@dataclass(frozen=True)
class Binding:
    """`predicate.ledger`: the chain position the signature binds (seq, prev, kind, time)."""

    seq: int | None
    prev: str | None
    kind: str | None
    time: str

    @classmethod
    def from_dict(cls, doc: Any) -> Binding | None:
        """From `predicate.ledger` (None if absent)."""
        if not isinstance(doc, dict):
            return None
        seq = doc.get("seq")
        return cls(
            seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
            _str(doc.get("prev")),
            _str(doc.get("kind")),
            str(doc.get("time", "")),
        )

    def to_dict(self) -> dict[str, Any]:
        """The `ledger` block."""
        return {"seq": self.seq, "prev": self.prev, "kind": self.kind, "time": self.time}


@dataclass(frozen=True)
class KeyDoc:
    """A public key as key entries name it."""

    keyid: str
    name: str
    public_key: str

    @classmethod
    def from_dict(cls, doc: Any) -> KeyDoc:
        """From `{keyid, name, public_key}` (missing fields become empty strings)."""
        d = _dict(doc)
        return cls(str(d.get("keyid", "")), str(d.get("name", "")), str(d.get("public_key", "")))

    def to_dict(self) -> dict[str, str]:
        """The key object."""
        return {"keyid": self.keyid, "name": self.name, "public_key": self.public_key}


@dataclass(frozen=True)
class RunnerRef:
    """Which runner (and version, and plug-in package) produced evidence."""

    name: str
    version: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_value(cls, value: Any) -> RunnerRef | None:
        """From `predicate.runner` (an object, or a bare name in foreign statements)."""
        if isinstance(value, str):
            return cls(value, "")
        if isinstance(value, dict) and isinstance(value.get("name"), str):
            extra = {k: v for k, v in value.items() if k not in ("name", "version")}
            return cls(value["name"], str(value.get("version", "")), extra)
        return None


@dataclass(frozen=True)
class ClaimRef:
    """What a reproduction reproduces: the claim entry's seq and digest (and its origin)."""

    seq: int | None
    digest: str | None
    predicate_type: str
    imported_from: str | None = None

    @classmethod
    def from_value(cls, value: Any) -> ClaimRef | None:
        """From `predicate.claim` as `reproduce` writes it."""
        if not isinstance(value, dict):
            return None
        seq = value.get("seq")
        src = value.get("imported_from")
        return cls(
            seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
            _str(value.get("digest")),
            str(value.get("predicate_type", "")),
            _str(src.get("digest")) if isinstance(src, dict) else None,
        )

    @property
    def digests(self) -> set[str]:
        """Digests this reference may match: the claim, and its origin entry if imported."""
        return {d for d in (self.digest, self.imported_from) if d}


# --------------------------------------------------------------------------- predicates
@dataclass(frozen=True)
class Predicate:
    """A predicate: its stored object verbatim (`raw`, so `to_dict` round-trips every byte,
    unknown fields included) and the typed fields of its family. This base class is the
    family of predicates evledger has no model for."""

    raw: Mapping[str, Any]
    binding: Binding | None

    FIELDS: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_dict(cls, doc: Any) -> Predicate:
        """From a predicate object (odd values become empty typed fields; `raw` keeps them)."""
        raw = _dict(doc)
        return cls._build(raw, Binding.from_dict(raw.get("ledger")))

    @classmethod
    def _build(cls, raw: dict[str, Any], binding: Binding | None) -> Predicate:
        return cls(raw, binding)

    def to_dict(self) -> dict[str, Any]:
        """The predicate object exactly as it was read."""
        return dict(self.raw)

    @property
    def extra(self) -> dict[str, Any]:
        """Fields this family does not model (kept, never dropped)."""
        return {k: v for k, v in self.raw.items() if k not in self.FIELDS and k != "ledger"}

    # the evidence view: what gate, diff, audit and report read
    @property
    def metrics(self) -> Metrics:
        """Flat numeric/bool metrics (empty if the family has none)."""
        return {}

    @property
    def runner(self) -> RunnerRef | None:
        """The runner that produced the evidence, if any."""
        return None


@dataclass(frozen=True)
class RunnerEvidence(Predicate):
    """A runner's measurement: params, metrics, per-matrix rows, determinism, environment."""

    runner_ref: RunnerRef | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    raw_metrics: Mapping[str, Any] = field(default_factory=dict)
    rows: tuple[Mapping[str, Any], ...] = ()
    determinism: Mapping[str, Any] = field(default_factory=dict)
    environment: Mapping[str, Any] = field(default_factory=dict)

    FIELDS: ClassVar[tuple[str, ...]] = (
        "runner",
        "params",
        "metrics",
        "rows",
        "determinism",
        "environment",
    )

    @classmethod
    def _build(cls, raw: dict[str, Any], binding: Binding | None) -> Predicate:
        return cls(raw, binding, **_runner_fields(raw))

    @cached_property
    def metrics(self) -> Metrics:
        """The runner's flat metrics."""
        return flat_metrics(self.raw_metrics)

    @property
    def runner(self) -> RunnerRef | None:
        """The runner reference."""
        return self.runner_ref


def _runner_fields(raw: dict[str, Any]) -> dict[str, Any]:
    rows = raw.get("rows")
    return {
        "runner_ref": RunnerRef.from_value(raw.get("runner")),
        "params": _dict(raw.get("params")),
        "raw_metrics": _dict(raw.get("metrics")),
        "rows": tuple(r for r in rows if isinstance(r, dict)) if isinstance(rows, list) else (),
        "determinism": _dict(raw.get("determinism")),
        "environment": _dict(raw.get("environment")),
    }


@dataclass(frozen=True)
class Reproduction(RunnerEvidence):
    """A re-run of a claim: the fresh figures plus the claim it reproduces and the verdict."""

    claim: ClaimRef | None = None
    verdict: str = ""
    deltas: Mapping[str, Any] = field(default_factory=dict)
    param_changes: Mapping[str, Any] = field(default_factory=dict)

    FIELDS: ClassVar[tuple[str, ...]] = (
        *RunnerEvidence.FIELDS,
        "claim",
        "verdict",
        "deltas",
        "param_changes",
    )

    @classmethod
    def _build(cls, raw: dict[str, Any], binding: Binding | None) -> Predicate:
        return cls(
            raw,
            binding,
            **_runner_fields(raw),
            claim=ClaimRef.from_value(raw.get("claim")),
            verdict=str(raw.get("verdict", "")),
            deltas=_dict(raw.get("deltas")),
            param_changes=_dict(raw.get("param_changes")),
        )


@dataclass(frozen=True)
class Legacy(Predicate):
    """A legacy POC evidence document, kept verbatim, read through `LEGACY_METRICS`."""

    schema_id: str = ""
    document: Mapping[str, Any] = field(default_factory=dict)

    FIELDS: ClassVar[tuple[str, ...]] = ("schema_id", "document", "source")

    @classmethod
    def _build(cls, raw: dict[str, Any], binding: Binding | None) -> Predicate:
        return cls(raw, binding, str(raw.get("schema_id", "")), _dict(raw.get("document")))

    @cached_property
    def metrics(self) -> Metrics:
        """Our metric view of the legacy document."""
        out: Metrics = {}
        for name, path in LEGACY_METRICS.get(self.schema_id, {}).items():
            num = metric_value(_dig(self.document, path))
            if num is not None:
                out[name] = num
        return out

    @cached_property
    def runner(self) -> RunnerRef | None:
        """The legacy schema_id stands where a runner name would."""
        return RunnerRef(self.schema_id, "") if self.schema_id else None

    @property
    def family(self) -> str | None:
        """Our runner that measures the same thing (None: no counterpart)."""
        return LEGACY_RUNNERS.get(self.schema_id)


@dataclass(frozen=True)
class Import(Predicate):
    """A foreign DSSE envelope kept verbatim, with where it came from and the key it verified
    under (verify re-checks that signature; see ledger.verify)."""

    envelope: Mapping[str, Any] = field(default_factory=dict)
    source: Mapping[str, Any] = field(default_factory=dict)
    foreign_keys: tuple[KeyDoc, ...] = ()

    FIELDS: ClassVar[tuple[str, ...]] = ("envelope", "source", "foreign_keys")

    @classmethod
    def _build(cls, raw: dict[str, Any], binding: Binding | None) -> Predicate:
        keys = raw.get("foreign_keys")
        return cls(
            raw,
            binding,
            _dict(raw.get("envelope")),
            _dict(raw.get("source")),
            tuple(KeyDoc.from_dict(k) for k in keys) if isinstance(keys, list) else (),
        )

    @cached_property
    def inner(self) -> Statement | None:
        """The foreign statement inside the envelope (None if it is unreadable)."""
        payload = self.envelope.get("payload")
        if not isinstance(payload, str):
            return None
        try:
            padded = payload + "=" * (-len(payload) % 4)
            alphabet = "-_" if ("-" in payload or "_" in payload) else None
            raw = base64.b64decode(padded, altchars=b"-_" if alphabet else None)
            doc = orjson.loads(raw)
        except (ValueError, binascii.Error, orjson.JSONDecodeError):
            return None
        return Statement.from_dict(doc) if isinstance(doc, dict) else None

    @property
    def origin(self) -> str | None:
        """The ledger origin a bundle import came from."""
        return _str(self.source.get("origin"))

    @property
    def source_digest(self) -> str | None:
        """The digest of the foreign entry (bundle imports)."""
        return _str(self.source.get("digest"))

    @property
    def source_kind(self) -> str | None:
        """The kind of the foreign entry (bundle imports)."""
        return _str(self.source.get("kind"))

    @property
    def signer(self) -> str | None:
        """The keyid of the foreign key the envelope was verified with."""
        return self.foreign_keys[0].keyid if self.foreign_keys else None


@dataclass(frozen=True)
class Genesis(Predicate):
    """The first entry: the ledger's origin and its root key."""

    origin: str = ""
    root_key: KeyDoc | None = None

    FIELDS: ClassVar[tuple[str, ...]] = ("origin", "root_key")

    @classmethod
    def _build(cls, raw: dict[str, Any], binding: Binding | None) -> Predicate:
        root = raw.get("root_key")
        return cls(
            raw,
            binding,
            str(raw.get("origin", "")),
            KeyDoc.from_dict(root) if isinstance(root, dict) else None,
        )


@dataclass(frozen=True)
class KeyAdd(Predicate):
    """A key trusted from the next entry on."""

    key: KeyDoc | None = None

    FIELDS: ClassVar[tuple[str, ...]] = ("key",)

    @classmethod
    def _build(cls, raw: dict[str, Any], binding: Binding | None) -> Predicate:
        key = raw.get("key")
        return cls(raw, binding, KeyDoc.from_dict(key) if isinstance(key, dict) else None)


@dataclass(frozen=True)
class KeyRevoke(Predicate):
    """A key no longer trusted after this entry, and why."""

    keyid: str = ""
    reason: str = ""

    FIELDS: ClassVar[tuple[str, ...]] = ("keyid", "reason")

    @classmethod
    def _build(cls, raw: dict[str, Any], binding: Binding | None) -> Predicate:
        return cls(raw, binding, str(raw.get("keyid", "")), str(raw.get("reason", "")))


@dataclass(frozen=True)
class PolicyDoc(Predicate):
    """A gate policy's exact TOML text, signed."""

    name: str = ""
    text: str = ""
    sha256: str = ""

    FIELDS: ClassVar[tuple[str, ...]] = ("name", "description", "text", "sha256")

    @classmethod
    def _build(cls, raw: dict[str, Any], binding: Binding | None) -> Predicate:
        return cls(
            raw,
            binding,
            str(raw.get("name", "")),
            str(raw.get("text", "")),
            str(raw.get("sha256", "")),
        )


#: predicate name (after PREDICATE_PREFIX) -> family; runners not listed are runner evidence
FAMILIES: dict[str, type[Predicate]] = {
    "reproduction": Reproduction,
    "legacy": Legacy,
    "import": Import,
    "genesis": Genesis,
    "key-add": KeyAdd,
    "key-revoke": KeyRevoke,
    "policy": PolicyDoc,
}


def family_of(predicate_type: str, doc: Any) -> type[Predicate]:
    """The family that reads a predicate: ours by name, else runner evidence if it has a
    runner and metrics (a foreign statement shaped like ours), else opaque."""
    if predicate_type.startswith(PREDICATE_PREFIX):
        name = predicate_type[len(PREDICATE_PREFIX) :].partition("/")[0]
        return FAMILIES.get(name, RunnerEvidence)
    if isinstance(doc, dict) and "runner" in doc and isinstance(doc.get("metrics"), dict):
        return RunnerEvidence
    return Predicate


# --------------------------------------------------------------------------- statement
@dataclass(frozen=True)
class Statement:
    """An in-toto Statement v1 with a typed predicate."""

    subject: tuple[Subject, ...]
    predicate_type: str
    predicate: Predicate
    type: str = STATEMENT_TYPE
    raw: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, doc: Any) -> Statement:
        """From a statement object (never raises; odd parts become empty, `raw` keeps all)."""
        raw = _dict(doc)
        ptype = str(raw.get("predicateType", ""))
        subjects = raw.get("subject")
        pred_doc = raw.get("predicate")
        return cls(
            tuple(Subject.from_dict(s) for s in subjects) if isinstance(subjects, list) else (),
            ptype,
            family_of(ptype, pred_doc).from_dict(pred_doc),
            str(raw.get("_type", "")),
            raw,
        )

    def to_dict(self) -> dict[str, Any]:
        """The statement object exactly as it was read (unknown fields included)."""
        return dict(self.raw)

    @property
    def extra(self) -> dict[str, Any]:
        """Top-level fields beyond in-toto's four (kept, never dropped)."""
        known = ("_type", "subject", "predicateType", "predicate")
        return {k: v for k, v in self.raw.items() if k not in known}

    @cached_property
    def evidence(self) -> Statement:
        """The statement that carries the evidence: the foreign one for an import."""
        if isinstance(self.predicate, Import):
            inner = self.predicate.inner
            if inner is not None:
                return inner
        return self

    @cached_property
    def subject_digests(self) -> set[str]:
        """The sha256 digests of the subjects."""
        return {s.sha256 for s in self.subject if s.sha256}


def runner_statement(
    *,
    runner: str,
    version: str,
    subjects: list[dict[str, Any]],
    predicate: Mapping[str, Any],
    predicate_type: str | None = None,
) -> dict[str, Any]:
    """A runner evidence statement (the dict a runner appends), through the typed model so a
    runner cannot build one that evledger would read differently."""
    doc = {
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": predicate_type or f"{PREDICATE_PREFIX}{runner}/v1",
        "predicate": {
            **predicate,
            "runner": {**_dict(predicate.get("runner")), "name": runner, "version": version},
        },
    }
    statement = Statement.from_dict(doc)
    ref = statement.predicate.runner
    if not isinstance(statement.predicate, RunnerEvidence) or ref is None or ref.name != runner:
        raise ValueError(f"runner statement for {runner!r} does not read back as its evidence")
    return statement.to_dict()


__all__ = [
    "FAMILIES",
    "LEGACY_METRICS",
    "LEGACY_RUNNERS",
    "Binding",
    "ClaimRef",
    "Genesis",
    "Import",
    "KeyAdd",
    "KeyDoc",
    "KeyRevoke",
    "Legacy",
    "PolicyDoc",
    "Predicate",
    "Reproduction",
    "RunnerEvidence",
    "RunnerRef",
    "Statement",
    "Subject",
    "flat_metrics",
    "metric_value",
    "runner_statement",
]
