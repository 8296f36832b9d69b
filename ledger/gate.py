"""Policies (TOML claims with checks) and their GO/NO-GO evaluation against a ledger's entries."""

from __future__ import annotations

import hashlib
import math
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import schemas
from ledger.canonical import loads_toml_strict
from ledger.chain import Entry
from ledger.errors import InputError
from ledger.evidence import (
    LEGACY_METRICS,
    Metric,
    fmt_metric,
    metrics_of,
    predicate_type_of,
    runner_of,
)
from ledger.metricnames import ALIASES, with_aliases
from ledger.ratedistortion import FAILING, physics_of, settle
from ledger.statement import PolicyDoc

if TYPE_CHECKING:
    from ledger.view import VerifiedView

POLICY_SCHEMA = "policy.v1.schema.json"
POLICY_DIR = "policies"
DEFAULT_POLICY = "v37"
PREDICATE_PREFIX = "https://evledger.dev/predicates/"

OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}
#: runners of ours that produce evidence
RUNNERS = ("static", "pareto", "pq", "hessian", "proxy", "entropy", "memory", "ecsq", "tcq")
#: names allowed after PREDICATE_PREFIX in a selector's predicate_type
PREDICATE_NAMES = (*RUNNERS, "evidence", "legacy", "import", "reproduction", "policy")
KINDS = ("evidence", "import", "reproduction")
SELECTS = ("latest", "best")
ORDERS = ("max", "min")
#: metric names we know of (a policy naming another metric gets a warning, not an error)
KNOWN_METRICS = frozenset(
    {
        "ratio_fp16_effective",
        "cos_min",
        "cos_mean",
        "cos_weighted",
        "out_cos",
        "out_cos_mean",
        "bytes_fp16",
        "bytes_total",
        "bits_per_weight",
        "n_matrices",
        "n_params",
        "rd_bound_ratio",
        "rd_efficiency",
        "determinism_delta",
        "peak_rss_mb",
        "model_mb",
        "rss_ratio",
        "entropy_gain_ok",
        "bytes_entropy",
        "bytes_fixed",
        "bytes_codes",
        "bytes_scales",
        "bytes_zeros",
        "bytes_lowrank",
        "bytes_codebooks",
        "go",
        "cos_min_rtn",
        "out_cos_rtn",
        "out_cos_mean_rtn",
        "embedding_cos_min",
        "embedding_cos_mean",
        "embedding_cos_min_rtn",
        "embedding_cos_mean_rtn",
        "ppl",
        "ppl_base",
        "ppl_delta",
        "entropy_before",
        "entropy_after",
        "budget_ratio",
        "cos_min_at_budget",
        "ratio_at_budget",
        "frontier_points",
        "candidates",
        *(m for table in LEGACY_METRICS.values() for m in table),
        *ALIASES,
        "ratio_model",
        "bytes_model_fp16",
        "bytes_model_total",
        "params_model",
        "ppl_after",
        "ppl_before",
        "ppl_ratio",
        "rd_data_bound_ratio",
    }
)
KNOWN_METRIC_PATTERNS = (
    re.compile(r"(ratio|feasible|cos_min)_at_cos_[0-9]{3}"),
    re.compile(r"bytes_[a-z0-9_]+"),
    re.compile(
        r"(ppl_(before|after_gptq|after_rtn|ratio|ratio_rtn)|embedding_cos_[a-z_]+)(_calib)?"
    ),
)
_URI = re.compile(r"^https?://[^\s/]+/\S+$")


# --------------------------------------------------------------------------- policy model
@dataclass(frozen=True)
class Check:
    """One comparison of a metric with a literal value."""

    metric: str
    op: str
    value: Metric

    def evaluate(self, metrics: dict[str, Metric]) -> CheckResult:
        """Compare the observed metric (absent or of the wrong type fails)."""
        observed = metrics.get(self.metric)
        if observed is None:
            return CheckResult(self.metric, self.op, self.value, None, False, "metric absent")
        if isinstance(self.value, bool) != isinstance(observed, bool):
            want = "a boolean" if isinstance(self.value, bool) else "a number"
            return CheckResult(
                self.metric, self.op, self.value, observed, False, f"observed is not {want}"
            )
        ok = bool(OPS[self.op](observed, self.value))
        return CheckResult(self.metric, self.op, self.value, observed, ok, "")

    def __str__(self) -> str:
        value = str(self.value).lower() if isinstance(self.value, bool) else f"{self.value:g}"
        return f"{self.metric} {self.op} {value}"


@dataclass(frozen=True)
class Selector:
    """Which entries a claim reads, and which one of them counts."""

    predicate_types: tuple[str, ...] = ()
    runners: tuple[str, ...] = ()
    subject: str | None = None
    kinds: tuple[str, ...] = ("evidence",)
    select: str = "latest"
    by: str | None = None
    order: str = "max"
    where: tuple[Check, ...] = ()

    def matches(self, entry: Entry) -> bool:
        """True if the entry is a candidate (kind, predicate type, runner, subject)."""
        if entry.kind not in self.kinds:
            return False
        if self.predicate_types and predicate_type_of(entry) not in self.predicate_types:
            return False
        if self.runners and runner_of(entry) not in self.runners:
            return False
        if self.subject is not None and self.subject not in entry.statement.subject_digests:
            return False
        return True

    def describe(self) -> str:
        """Short human description."""
        what = ",".join(self.runners or self.predicate_types)
        how = f"best by {self.order} {self.by}" if self.select == "best" else "latest"
        where = f" where {' and '.join(str(c) for c in self.where)}" if self.where else ""
        return f"{what} ({how}{where})"


@dataclass(frozen=True)
class Claim:
    """A claim: its evidence selector, its checks, and whether the gate needs it."""

    id: str
    title: str
    required: bool
    evidence: Selector
    checks: tuple[Check, ...]
    note: str = ""


@dataclass(frozen=True)
class Policy:
    """A named set of claims."""

    name: str
    description: str
    claims: tuple[Claim, ...]
    source: str = ""
    warnings: tuple[str, ...] = ()
    signed: bool = False
    """True for a verified policy entry (or the packaged one); False for a file given by path."""
    sha256: str = ""
    """sha256 (hex) of the policy's exact TOML bytes."""


class PolicyError(InputError):
    """A policy file is malformed; `problems` holds one message per mistake."""

    def __init__(self, problems: list[str], *, path: Path | str | None = None) -> None:
        self.problems = problems
        super().__init__("; ".join(problems), path=path)


# --------------------------------------------------------------------------- loading
def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return ()


def _known_metric(name: str) -> bool:
    return name in KNOWN_METRICS or any(p.fullmatch(name) for p in KNOWN_METRIC_PATTERNS)


#: the largest magnitude a threshold may have (a 5000-digit integer is no threshold)
MAX_THRESHOLD = 1e15


def _out_of_range(metric: str, value: float) -> str:
    """Why a numeric threshold cannot be meant (empty if it is fine)."""
    if not math.isfinite(value):
        return f"{value} is not a finite number"
    if abs(value) > MAX_THRESHOLD:
        return f"{value:.3g} is out of range (|value| <= {MAX_THRESHOLD:g})"
    quantity = metric.split("_at_", 1)[0]  # ratio_at_cos_094 is a ratio, not a cosine
    if re.search(r"(^|_)cos(_|$)", quantity) and not -1.0 <= value <= 1.0:
        return f"{value:g} is not a cosine (between -1 and 1)"
    if re.search(r"(^|_)(ratio|bytes|rss|mb)(_|$)", quantity) and value < 0:
        return f"{value:g} cannot be negative for {metric}"
    return ""


def _check_problems(doc: Any, where: str, problems: list[str], warnings: list[str]) -> None:
    """Clear messages for one check table."""
    if not isinstance(doc, dict):
        problems.append(f"{where}: must be a table with metric, op and value")
        return
    for key in ("metric", "op", "value"):
        if key not in doc:
            problems.append(f"{where}: missing field {key!r}")
    for key in sorted(set(doc) - {"metric", "op", "value"}):
        problems.append(f"{where}: unknown field {key!r}")
    metric, op, value = doc.get("metric"), doc.get("op"), doc.get("value")
    if "metric" in doc:
        if not isinstance(metric, str) or not metric:
            problems.append(f"{where}.metric: must be a non-empty string")
        elif not _known_metric(metric):
            warnings.append(f"{where}.metric: unknown metric {metric!r}")
    if "op" in doc and op not in OPS:
        problems.append(f"{where}.op: unknown op {op!r} (use one of {' '.join(OPS)})")
    if "value" in doc:
        if not isinstance(value, bool | int | float):
            problems.append(
                f"{where}.value: must be a number or a boolean, not {type(value).__name__}"
                " (strings are never evaluated)"
            )
        elif isinstance(value, bool) and op in OPS and op not in ("==", "!="):
            problems.append(f"{where}: op {op!r} cannot compare a boolean; use == or !=")
        elif not isinstance(value, bool) and (reason := _out_of_range(str(metric), value)):
            problems.append(f"{where}.value: {reason}")


def _selector_problems(doc: Any, where: str, problems: list[str], warnings: list[str]) -> None:
    if not isinstance(doc, dict):
        problems.append(f"{where}: must be a table")
        return
    allowed = {"predicate_type", "runner", "subject", "kinds", "select", "by", "order", "where"}
    for key in sorted(set(doc) - allowed):
        problems.append(f"{where}: unknown field {key!r}")
    if "predicate_type" not in doc and "runner" not in doc:
        problems.append(f"{where}: missing field 'predicate_type' or 'runner'")
    for ptype in _strings(doc.get("predicate_type")):
        if not _URI.match(ptype):
            problems.append(f"{where}.predicate_type: bad predicate type {ptype!r} (not a URI)")
        elif ptype.startswith(PREDICATE_PREFIX):
            name, _, version = ptype[len(PREDICATE_PREFIX) :].partition("/")
            if name not in PREDICATE_NAMES or not re.fullmatch(r"v[0-9]+", version):
                problems.append(
                    f"{where}.predicate_type: bad predicate type {ptype!r}"
                    f" (ours are {PREDICATE_PREFIX}<{'|'.join(PREDICATE_NAMES)}>/v1)"
                )
    if "predicate_type" in doc and not _strings(doc["predicate_type"]):
        problems.append(f"{where}.predicate_type: must be a string or a list of strings")
    if "runner" in doc and not _strings(doc["runner"]):
        problems.append(f"{where}.runner: must be a string or a list of strings")
    for runner in _strings(doc.get("runner")):
        if runner not in RUNNERS and runner not in LEGACY_METRICS:
            problems.append(
                f"{where}.runner: unknown runner {runner!r}"
                f" (known: {', '.join((*RUNNERS, *LEGACY_METRICS))})"
            )
    select = doc.get("select", "latest")
    if select not in SELECTS:
        problems.append(f"{where}.select: must be 'latest' or 'best', not {select!r}")
    if select == "best" and "by" not in doc:
        problems.append(f"{where}: select = 'best' needs 'by' (the metric to rank by)")
    if "by" in doc:
        if not isinstance(doc["by"], str):
            problems.append(f"{where}.by: must be a metric name")
        elif not _known_metric(doc["by"]):
            warnings.append(f"{where}.by: unknown metric {doc['by']!r}")
    if doc.get("order", "max") not in ORDERS:
        problems.append(f"{where}.order: must be 'max' or 'min', not {doc.get('order')!r}")
    kinds = doc.get("kinds", [])
    for kind in kinds if isinstance(kinds, list) else [kinds]:
        if kind not in KINDS:
            problems.append(f"{where}.kinds: {kind!r} is not one of {', '.join(KINDS)}")
    if "subject" in doc and not (
        isinstance(doc["subject"], str) and re.fullmatch(r"(sha256:)?[0-9a-f]{64}", doc["subject"])
    ):
        problems.append(f"{where}.subject: must be a sha256 digest (64 lower-case hex digits)")
    where_list = doc.get("where", [])
    if not isinstance(where_list, list):
        problems.append(f"{where}.where: must be a list of checks")
    else:
        for i, check in enumerate(where_list):
            _check_problems(check, f"{where}.where[{i}]", problems, warnings)


def policy_problems(doc: Any) -> tuple[list[str], list[str]]:
    """(errors, warnings) for a parsed policy document; errors empty means valid."""
    problems: list[str] = []
    warnings: list[str] = []
    if not isinstance(doc, dict):
        return ["the policy must be a TOML table"], []
    for key in ("name", "claims"):
        if key not in doc:
            problems.append(f"missing field {key!r}")
    for key in sorted(set(doc) - {"name", "description", "claims"}):
        problems.append(f"unknown field {key!r}")
    claims = doc.get("claims", [])
    if not isinstance(claims, list) or ("claims" in doc and not claims):
        problems.append("claims: must be a non-empty list of [[claims]] tables")
        claims = []
    seen: set[str] = set()
    for i, claim in enumerate(claims):
        where = f"claims[{i}]"
        if not isinstance(claim, dict):
            problems.append(f"{where}: must be a table")
            continue
        cid = claim.get("id")
        if isinstance(cid, str):
            where = f"claims[{i}] ({cid})"
            if cid in seen:
                problems.append(f"{where}: duplicate claim id")
            seen.add(cid)
        for key in ("id", "title", "required", "evidence", "checks"):
            if key not in claim:
                problems.append(f"{where}: missing field {key!r}")
        allowed = {"id", "title", "required", "evidence", "checks", "note"}
        for key in sorted(set(claim) - allowed):
            problems.append(f"{where}: unknown field {key!r}")
        if "required" in claim and not isinstance(claim["required"], bool):
            problems.append(f"{where}.required: must be true or false")
        if "evidence" in claim:
            _selector_problems(claim["evidence"], f"{where}.evidence", problems, warnings)
        checks = claim.get("checks", [])
        if not isinstance(checks, list) or ("checks" in claim and not checks):
            problems.append(f"{where}.checks: must be a non-empty list of [[claims.checks]]")
            checks = []
        for j, check in enumerate(checks):
            _check_problems(check, f"{where}.checks[{j}]", problems, warnings)
    if not problems:  # the schema is the contract; our messages above are the friendly part
        problems.extend(schemas.errors(POLICY_SCHEMA, doc))
    return problems, warnings


def _check(doc: dict[str, Any]) -> Check:
    return Check(str(doc["metric"]), str(doc["op"]), doc["value"])


def policy_from_doc(doc: Any, *, source: str = "", path: Path | str | None = None) -> Policy:
    """Validate a parsed policy and build it (raises PolicyError listing every mistake)."""
    problems, warnings = policy_problems(doc)
    if problems:
        raise PolicyError(problems, path=path)
    claims = []
    for c in doc["claims"]:
        ev = c["evidence"]
        subject = ev.get("subject")
        selector = Selector(
            predicate_types=_strings(ev.get("predicate_type")),
            runners=_strings(ev.get("runner")),
            subject=subject.removeprefix("sha256:") if subject else None,
            kinds=tuple(ev.get("kinds", ("evidence",))),
            select=ev.get("select", "latest"),
            by=ev.get("by"),
            order=ev.get("order", "max"),
            where=tuple(_check(w) for w in ev.get("where", [])),
        )
        claims.append(
            Claim(
                id=c["id"],
                title=c["title"],
                required=c["required"],
                evidence=selector,
                checks=tuple(_check(k) for k in c["checks"]),
                note=c.get("note", ""),
            )
        )
    return Policy(doc["name"], doc.get("description", ""), tuple(claims), source, tuple(warnings))


def parse_policy(text: str | bytes, *, source: str = "", path: Path | str | None = None) -> Policy:
    """Parse TOML text into a validated Policy."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InputError("policy is not UTF-8 text", path=path) from e
    doc = loads_toml_strict(text, path=path)  # size, depth and number limits; no nan/inf
    return policy_from_doc(doc, source=source, path=path)


def load_policy_file(path: Path) -> Policy:
    """Read and validate a policy file."""
    if not path.is_file():
        raise InputError("no such policy file", path=path)
    return parse_policy(path.read_bytes(), source=str(path), path=path)


def packaged_policy_names() -> list[str]:
    """Names of the default policies shipped as package data."""
    folder = resources.files("ledger") / POLICY_DIR
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def packaged_policy_text(name: str) -> bytes:
    """The TOML text of a packaged default policy."""
    res = resources.files("ledger") / POLICY_DIR / f"{name}.toml"
    if not res.is_file():
        raise InputError(
            f"no verified policy entry named {name!r} and no packaged one "
            f"(packaged: {', '.join(packaged_policy_names())}; sign yours with "
            "`evledger policy add FILE`)"
        )
    return res.read_bytes()


def packaged_policy_files() -> dict[str, bytes]:
    """{"policies/NAME.toml": bytes} for every packaged policy (what `init` copies)."""
    return {f"{POLICY_DIR}/{n}.toml": packaged_policy_text(n) for n in packaged_policy_names()}


def resolve_policy(
    spec: str | None, view: VerifiedView | None = None, *, ledger: Any | None = None
) -> Policy:
    """The policy a gate runs: a file given by path (unsigned, and said so with its sha256),
    else by name (default v37) the newest *verified* `policy` entry of that name in the view,
    else the packaged one. An unsigned `policies/NAME.toml` committed in the ledger is never
    used implicitly; if it differs from the policy used, a warning says so."""
    if spec is not None and (spec.endswith(".toml") or "/" in spec or Path(spec).is_file()):
        path = Path(spec)
        if not path.is_file():
            raise InputError("no such policy file", path=path)
        data = path.read_bytes()
        where = f"unsigned file {path} (sha256:{hashlib.sha256(data).hexdigest()[:16]})"
        return _with(parse_policy(data, source=where, path=path), signed=False, data=data)
    name = spec or DEFAULT_POLICY
    signed = _signed_policy(name, view) if view is not None else None
    if signed is not None:
        policy = signed
    else:
        data = packaged_policy_text(name)
        where = f"packaged {name} (sha256:{hashlib.sha256(data).hexdigest()[:16]})"
        policy = _with(
            parse_policy(data, source=where, path=f"{name}.toml"), signed=True, data=data
        )
    if ledger is not None:
        policy = _warn_unused_file(policy, name, ledger, view)
    return policy


def _with(policy: Policy, *, signed: bool, data: bytes) -> Policy:
    return replace(policy, signed=signed, sha256=hashlib.sha256(data).hexdigest())


def _signed_policy(name: str, view: VerifiedView) -> Policy | None:
    """The newest verified `policy` entry named `name` (its TOML text parsed and validated)."""
    for entry in reversed(view.entries):
        pred = entry.predicate
        if entry.kind == "policy" and isinstance(pred, PolicyDoc) and pred.name == name:
            data = pred.text.encode("utf-8")
            where = f"signed policy entry seq {entry.seq} ({entry.digest[:19]})"
            return _with(
                parse_policy(data, source=where, path=f"seq {entry.seq}"), signed=True, data=data
            )
    return None


def _warn_unused_file(policy: Policy, name: str, ledger: Any, view: VerifiedView | None) -> Policy:
    rev = view.rev if view is not None else "HEAD"
    if ledger.store.resolve(rev) is None:
        return policy
    data = ledger.store.read_path(rev, f"{POLICY_DIR}/{name}.toml")
    if data is None or hashlib.sha256(data).hexdigest() == policy.sha256:
        return policy
    note = (
        f"{POLICY_DIR}/{name}.toml in the ledger is an unsigned file that differs from the "
        f"policy used and was NOT used; sign it with `evledger policy add {POLICY_DIR}/{name}.toml`"
    )
    return replace(policy, warnings=(*policy.warnings, note))


def policy_statement(path: Path) -> dict[str, Any]:
    """The statement of a `policy` entry: a validated policy file's exact text, signed."""
    data = path.read_bytes() if path.is_file() else b""
    if not data:
        raise InputError("no such policy file", path=path)
    policy = parse_policy(data, source=str(path), path=path)
    digest = hashlib.sha256(data).hexdigest()
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": f"policy:{policy.name}", "digest": {"sha256": digest}}],
        "predicateType": schemas.predicate_type("policy"),
        "predicate": {
            "name": policy.name,
            "description": policy.description,
            "text": data.decode("utf-8"),
            "sha256": digest,
        },
    }


# --------------------------------------------------------------------------- evaluation
@dataclass
class CheckResult:
    """One check with what was observed."""

    metric: str
    op: str
    value: Metric
    observed: Metric | None
    ok: bool
    reason: str = ""


@dataclass
class SourceRef:
    """The entry a claim's figures came from."""

    seq: int
    digest: str
    runner: str | None
    kind: str
    time: str


@dataclass
class ClaimResult:
    """Outcome of one claim: pass, fail or missing."""

    id: str
    title: str
    required: bool
    state: str
    checks: list[CheckResult] = field(default_factory=list)
    source: SourceRef | None = None
    candidates: int = 0
    selector: str = ""
    note: str = ""
    metrics: dict[str, Metric] = field(default_factory=dict)
    physics: str = ""
    """Why the source evidence is physically implausible (empty when it is not)."""
    physics_status: str = ""
    """The physics status behind `physics` (`implausible`, `needs-reproduction`, …)."""

    @property
    def blocking(self) -> bool:
        """True if this claim makes the gate NO-GO."""
        return self.required and self.state != "pass"

    def reasons(self) -> list[str]:
        """Why the claim did not pass (empty if it did)."""
        if self.state == "missing":
            return [self.note or "no evidence"]
        failed = [
            f"{c.metric} = {fmt_metric(c.observed)} (needs {c.op} {fmt_metric(c.value)})"
            + (f": {c.reason}" if c.reason else "")
            for c in self.checks
            if not c.ok
        ]
        return failed + ([self.physics] if self.physics else [])


@dataclass
class GateResult:
    """Outcome of a policy on a ledger at one revision."""

    policy: str
    source: str
    go: bool
    claims: list[ClaimResult]
    entries: int
    rev: str = "HEAD"
    warnings: list[str] = field(default_factory=list)
    policy_signed: bool = False
    policy_sha256: str = ""
    trust: dict[str, Any] = field(default_factory=dict)
    """The verified view's trust block (anchor, N of M verified, exclusions)."""

    @property
    def outcome(self) -> str:
        """ "GO" or "NO-GO"."""
        return "GO" if self.go else "NO-GO"

    def claim(self, claim_id: str) -> ClaimResult:
        """The result of one claim by id."""
        for c in self.claims:
            if c.id == claim_id:
                return c
        raise KeyError(claim_id)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the `--json` document)."""
        doc = asdict(self)
        doc["outcome"] = self.outcome
        for c, res in zip(doc["claims"], self.claims, strict=True):
            c["blocking"] = res.blocking
            c["reasons"] = res.reasons()
        doc["blocking"] = [c.id for c in self.claims if c.blocking]
        return doc


def _rank_key(metric: str) -> Callable[[tuple[Entry, dict[str, Metric]]], tuple[float, int]]:
    def key(item: tuple[Entry, dict[str, Metric]]) -> tuple[float, int]:
        return (float(item[1][metric]), item[0].seq)

    return key


def evaluate_claim(claim: Claim, entries: Iterable[Entry]) -> ClaimResult:
    """Select the claim's evidence among `entries` and run its checks."""
    sel = claim.evidence
    result = ClaimResult(
        claim.id, claim.title, claim.required, "missing", selector=sel.describe(), note=claim.note
    )
    items = list(entries)
    candidates = [(e, with_aliases(metrics_of(e))) for e in items if sel.matches(e)]
    result.candidates = len(candidates)
    if not candidates:
        result.note = f"no evidence from {sel.describe()}"
        return result
    pool = [c for c in candidates if all(w.evaluate(c[1]).ok for w in sel.where)]
    if not pool:
        pool = candidates
        result.note = (
            f"no evidence meets {' and '.join(str(w) for w in sel.where)};"
            " judged on the best of the rest"
        )
    if sel.select == "best" and sel.by:
        by = sel.by
        ranked = [
            c
            for c in pool
            if isinstance(c[1].get(by), int | float) and not isinstance(c[1].get(by), bool)
        ]
        if not ranked:
            result.note = f"no candidate has the metric {by!r} to rank by"
            return result
        pick = (
            max(ranked, key=_rank_key(by))
            if sel.order == "max"
            else min(ranked, key=lambda c: (float(c[1][by]), -c[0].seq))
        )
    else:
        pick = max(pool, key=lambda c: c[0].seq)
    entry, metrics = pick
    result.source = SourceRef(entry.seq, entry.digest, runner_of(entry), entry.kind, entry.time)
    result.metrics = metrics
    result.checks = [check.evaluate(metrics) for check in claim.checks]
    # evidence that beats its data-dependent bound, contradicts itself, or is above the
    # Gaussian reference with no such bound and no reproduction by another key cannot pass
    physics = settle(physics_of(entry), entry, items)
    if physics.status in FAILING:
        result.physics, result.physics_status = physics.note, physics.status
    ok = all(c.ok for c in result.checks) and not result.physics
    result.state = "pass" if ok else "fail"
    return result


def evaluate(policy: Policy, entries: Iterable[Entry], *, rev: str = "HEAD") -> GateResult:
    """Evaluate every claim over `entries` (verified ones: see `evaluate_view`); GO only if
    every required claim passes."""
    items = [e for e in entries if e.kind in KINDS]
    count = len(items)
    claims = [evaluate_claim(c, items) for c in policy.claims]
    go = all(not c.blocking for c in claims)
    return GateResult(
        policy.name,
        policy.source,
        go,
        claims,
        count,
        rev,
        list(policy.warnings),
        policy.signed,
        policy.sha256,
    )


def evaluate_ledger(
    ledger: Any, policy: Policy | None = None, *, rev: str = "HEAD", anchor: Any = None
) -> GateResult:
    """Verify the ledger at `rev` and evaluate a policy (default v37) over what verified."""
    from ledger.view import verified_view

    view = verified_view(ledger, anchor, rev=rev)
    return evaluate_view(view, policy or resolve_policy(None, view, ledger=ledger))


def evaluate_view(view: VerifiedView, policy: Policy) -> GateResult:
    """Evaluate a policy over the verified entries of a view (excluded ones never count)."""
    result = evaluate(policy, view.entries, rev=view.rev)
    result.trust = view.trust_json()
    return result


@dataclass
class GateChange:
    """A claim whose state differs between two revisions."""

    id: str
    title: str
    required: bool
    old: str
    new: str
    old_source: SourceRef | None
    new_source: SourceRef | None


def gate_changes(old: GateResult, new: GateResult) -> list[GateChange]:
    """Claims whose state or source entry changed between two evaluations."""
    before = {c.id: c for c in old.claims}
    out = []
    for c in new.claims:
        b = before.get(c.id)
        old_state = b.state if b else "absent"
        old_src = b.source if b else None
        if old_state != c.state or (old_src and old_src.digest) != (c.source and c.source.digest):
            out.append(GateChange(c.id, c.title, c.required, old_state, c.state, old_src, c.source))
    return out


__all__ = [
    "Check",
    "Claim",
    "ClaimResult",
    "GateResult",
    "Policy",
    "PolicyError",
    "Selector",
    "evaluate",
    "evaluate_claim",
    "evaluate_ledger",
    "evaluate_view",
    "gate_changes",
    "load_policy_file",
    "packaged_policy_files",
    "parse_policy",
    "resolve_policy",
]
