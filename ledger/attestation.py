"""Standard outputs other tools read: a gate outcome as a signed in-toto Test Result
attestation, and a report as a Hugging Face model card `model-index` block.

- `gate_statement` follows the in-toto Test Result predicate v0.1
  (https://in-toto.io/attestation/test-result/v0.1): `result` PASSED (GO, every claim passed,
  everything verified), WARNED (GO, but an optional claim did not pass) or FAILED (NO-GO or
  anything excluded); `configuration` names the policy by its sha256 and the ledger's tree head;
  passed/warned/failed tests are claim ids. Subjects are the evidence entries the claims read.
  `sign_gate` wraps it in a DSSE envelope signed like every entry.
- `model_index` writes the `model-index:` YAML of a model card from a report's rows (verified
  evidence only); strings are JSON-quoted, which is valid YAML and keeps hostile text inert.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ledger.envelope import PAYLOAD_TYPE, STATEMENT_TYPE, sign_envelope
from ledger.gate import GateResult
from ledger.keys import SigningKey
from ledger.report import Report
from ledger.view import VerifiedView

TEST_RESULT_TYPE = "https://in-toto.io/attestation/test-result/v0.1"


def gate_result(result: GateResult, view: VerifiedView) -> str:
    """PASSED, WARNED or FAILED for a gate outcome over a view."""
    if not result.go or not view.ok:
        return "FAILED"
    return "PASSED" if all(c.state == "pass" for c in result.claims) else "WARNED"


def gate_statement(result: GateResult, view: VerifiedView) -> dict[str, Any]:
    """The in-toto Test Result statement of a gate outcome (unsigned)."""
    passed = [c.id for c in result.claims if c.state == "pass"]
    warned = [c.id for c in result.claims if c.state != "pass" and not c.required]
    failed = [c.id for c in result.claims if c.blocking]
    sources = {c.source.digest: c.source.seq for c in result.claims if c.source is not None}
    subject = [
        {"name": f"entry:{seq}", "digest": {"sha256": digest.removeprefix("sha256:")}}
        for digest, seq in sorted(sources.items(), key=lambda item: item[1])
    ]
    origin = view.report.origin or "evledger"
    tree = {
        "name": f"ledger:{origin}@{view.total}",
        "digest": {"sha256": view.report.root},
        "annotations": {
            "trust_anchor": view.report.trust_anchor,
            "verified": len(view.entries),
            "excluded": [x.seq for x in view.excluded],
        },
    }
    if not subject:  # nothing was evaluated: the statement is about the ledger itself
        subject = [{k: tree[k] for k in ("name", "digest")}]
    return {
        "_type": STATEMENT_TYPE,
        "subject": subject,
        "predicateType": TEST_RESULT_TYPE,
        "predicate": {
            "result": gate_result(result, view),
            "configuration": [
                {
                    "name": f"policy:{result.policy}",
                    "digest": {"sha256": result.policy_sha256},
                    "annotations": {"source": result.source, "signed": result.policy_signed},
                },
                tree,
            ],
            "passedTests": passed,
            "warnedTests": warned,
            "failedTests": failed,
        },
    }


def sign_gate(result: GateResult, view: VerifiedView, key: SigningKey) -> dict[str, Any]:
    """The gate outcome as a DSSE envelope signed by `key` (canonical JSON payload)."""
    from ledger.canonical import canonical_bytes

    return sign_envelope(canonical_bytes(gate_statement(result, view)), [key], PAYLOAD_TYPE)


# --------------------------------------------------------------------------- model card
def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON string syntax is valid YAML)."""
    return json.dumps(text, ensure_ascii=True)


def model_index(report: Report, model_name: str) -> str:
    """The `model-index:` block of a Hugging Face model card for a report (verified figures
    only; `verified: false` because Hugging Face did not evaluate them itself)."""
    lines = ["model-index:", f"- name: {_q(model_name)}", "  results:"]
    rows = [r for r in report.rows if r.state != "missing" and r.seq is not None]
    for row in rows:
        metrics = [
            (name, value)
            for name, value in row.figures.items()
            if isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(float(value))
        ]
        if not metrics:
            continue
        where = f"evidence entry seq {row.seq} ({row.runner or '?'})"
        lines += [
            "  - task:",
            '      type: "model-compression"',
            f"      name: {_q(f'{row.id}: {row.title}')}",
            "    dataset:",
            '      type: "evledger-ledger"',
            f"      name: {_q(where)}",
            f"      revision: {_q(str(row.digest))}",
            "    metrics:",
        ]
        for name, value in metrics:
            lines += [
                f"    - type: {_q(name)}",
                f"      value: {json.dumps(value)}",
                f"      name: {_q(f'{name} ({row.state}, gate {report.policy})')}",
                "      verified: false",
            ]
        lines += [
            "    source:",
            f"      name: {_q(f'evledger report, policy {report.policy}: {report.outcome}')}",
        ]
    if len(lines) == 3:
        lines[-1] = "  results: []"
    return "\n".join(lines) + "\n"


__all__ = ["TEST_RESULT_TYPE", "gate_result", "gate_statement", "model_index", "sign_gate"]
