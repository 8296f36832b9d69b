"""JSON Schemas shipped with evledger, and compiled validators looked up by predicate type."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
from jsonschema import Draft7Validator, Draft202012Validator
from jsonschema.protocols import Validator

HERE = Path(__file__).parent
PREDICATE_PREFIX = "https://evledger.dev/predicates/"

#: schema_id of legacy POC evidence -> file under schemas/legacy/
LEGACY_SCHEMAS = {
    "evidence.v43.v1": "v43_evidence.schema.json",
    "evidence.breakthrough.v1": "breakthrough_evidence.schema.json",
    "evidence.v300.vajra.v1": "v300_vajra.schema.json",
    "evidence.v400.resonance.v1": "v400_resonance.schema.json",
}


def predicate_type(name: str, version: int = 1) -> str:
    """The predicateType URI of one of our predicates."""
    return f"{PREDICATE_PREFIX}{name}/v{version}"


def load(relpath: str) -> dict[str, Any]:
    """A schema document by path relative to this folder."""
    with (HERE / relpath).open(encoding="utf-8") as fh:
        doc: dict[str, Any] = json.load(fh)
    return doc


@cache
def validator(relpath: str) -> Validator:
    """A compiled validator (draft from the schema's $schema; 2020-12 by default)."""
    schema = load(relpath)
    cls = Draft7Validator if "draft-07" in schema.get("$schema", "") else Draft202012Validator
    return cls(schema)


@cache
def _fast(relpath: str) -> Any:
    return jsonschema_rs.validator_for(load(relpath))


def is_valid(relpath: str, instance: Any) -> bool:
    """Fast validity check (compiled Rust validator); use `errors` for the messages."""
    return bool(_fast(relpath).is_valid(instance))


@cache
def predicate_schema_path(ptype: str) -> str | None:
    """Schema file for a predicateType of ours, or None if we ship none."""
    if not ptype.startswith(PREDICATE_PREFIX):
        return None
    name, _, version = ptype[len(PREDICATE_PREFIX) :].partition("/")
    rel = f"predicates/{name}.{version}.schema.json"
    return rel if (HERE / rel).is_file() else None


def legacy_schema_path(schema_id: str) -> str | None:
    """Schema file for a legacy POC schema_id, or None if unknown."""
    name = LEGACY_SCHEMAS.get(schema_id)
    return f"legacy/{name}" if name else None


def errors(relpath: str, instance: Any) -> list[str]:
    """Human-readable validation errors (empty if valid), best first."""
    if is_valid(relpath, instance):
        return []
    v = validator(relpath)
    out = []
    for err in sorted(v.iter_errors(instance), key=lambda e: (len(e.path), str(e.path))):
        where = "$" + "".join(
            f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path
        )
        out.append(f"{where}: {err.message}")
    return out
