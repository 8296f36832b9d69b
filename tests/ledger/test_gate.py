"""Policies: validation with one clear message per mistake, and GO/NO-GO evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest
from evidence_factory import add, example_ledger, statement

from ledger.api import Ledger
from ledger.gate import (
    PolicyError,
    evaluate,
    evaluate_ledger,
    gate_changes,
    packaged_policy_names,
    parse_policy,
    resolve_policy,
)

HEAD = 'name = "t"\n'


def one_claim(checks: str, evidence: str = 'runner = "static"', required: bool = True) -> str:
    """A policy with one claim."""
    return (
        HEAD
        + f'[[claims]]\nid = "C"\ntitle = "c"\nrequired = {str(required).lower()}\n'
        + f"evidence = {{ {evidence} }}\nchecks = [{checks}]\n"
    )


OPS_CASES = [
    (">=", 0.99, True),
    (">=", 0.995, False),
    (">", 0.98, True),
    (">", 0.99, False),
    ("<=", 0.99, True),
    ("<=", 0.98, False),
    ("<", 1.0, True),
    ("<", 0.99, False),
    ("==", 0.99, True),
    ("==", 0.5, False),
    ("!=", 0.5, True),
    ("!=", 0.99, False),
]


@pytest.mark.parametrize(("op", "value", "ok"), OPS_CASES)
def test_every_op(ledger: Ledger, op: str, value: float, ok: bool) -> None:
    add(ledger, statement("static", {"out_cos": 0.99}))
    policy = parse_policy(one_claim(f'{{ metric = "out_cos", op = "{op}", value = {value} }}'))
    res = evaluate(policy, ledger.entries())
    claim = res.claim("C")
    assert claim.state == ("pass" if ok else "fail")
    assert claim.checks[0].observed == 0.99
    assert res.go is ok


@pytest.mark.parametrize(
    ("op", "value", "ok"),
    [("==", "true", True), ("!=", "true", False), ("==", "false", False), ("!=", "false", True)],
)
def test_boolean_checks(ledger: Ledger, op: str, value: str, ok: bool) -> None:
    add(ledger, statement("entropy", {"entropy_gain_ok": True}))
    policy = parse_policy(
        one_claim(
            f'{{ metric = "entropy_gain_ok", op = "{op}", value = {value} }}', 'runner = "entropy"'
        )
    )
    assert evaluate(policy, ledger.entries()).claim("C").state == ("pass" if ok else "fail")


def test_type_mismatch_and_absent_metric_fail(ledger: Ledger) -> None:
    add(ledger, statement("static", {"out_cos": 0.99, "go": True}))
    policy = parse_policy(
        one_claim(
            '{ metric = "go", op = ">=", value = 1 }, '
            '{ metric = "cos_min", op = ">=", value = 0.9 }'
        )
    )
    claim = evaluate(policy, ledger.entries()).claim("C")
    assert claim.state == "fail"
    assert [c.reason for c in claim.checks] == ["observed is not a number", "metric absent"]


def test_missing_evidence_required_and_optional(ledger: Ledger) -> None:
    add(ledger, statement("static", {"out_cos": 0.99}))
    check = '{ metric = "peak_rss_mb", op = "<", value = 1024 }'
    res = evaluate(parse_policy(one_claim(check, 'runner = "memory"')), ledger.entries())
    assert res.claim("C").state == "missing" and not res.go
    assert res.claim("C").source is None and "no evidence" in res.claim("C").reasons()[0]
    res = evaluate(
        parse_policy(one_claim(check, 'runner = "memory"', required=False)), ledger.entries()
    )
    assert res.claim("C").state == "missing" and res.go


def test_latest_vs_best_and_source(ledger: Ledger) -> None:
    e1, e2, e3 = add(
        ledger,
        statement("static", {"ratio_fp16_effective": 8.0, "out_cos": 0.95}),
        statement("static", {"ratio_fp16_effective": 4.0, "out_cos": 0.995}),
        statement("static", {"ratio_fp16_effective": 3.0, "out_cos": 0.999}),
    )
    check = '{ metric = "out_cos", op = ">=", value = 0.99 }'
    latest = evaluate(parse_policy(one_claim(check)), ledger.entries()).claim("C")
    assert latest.source is not None and latest.source.seq == e3.seq
    assert latest.source.digest == e3.digest
    best = 'runner = "static", select = "best", by = "ratio_fp16_effective"'
    res = evaluate(parse_policy(one_claim(check, best)), ledger.entries()).claim("C")
    assert res.source is not None and res.source.seq == e1.seq and res.state == "fail"
    where = best + ', where = [{ metric = "out_cos", op = ">=", value = 0.99 }]'
    res = evaluate(parse_policy(one_claim(check, where)), ledger.entries()).claim("C")
    assert res.source is not None and res.source.seq == e2.seq and res.state == "pass"
    low = 'runner = "static", select = "best", by = "ratio_fp16_effective", order = "min"'
    res = evaluate(parse_policy(one_claim(check, low)), ledger.entries()).claim("C")
    assert res.source is not None and res.source.seq == e3.seq


def test_where_unmet_falls_back_with_note(ledger: Ledger) -> None:
    add(ledger, statement("static", {"ratio_fp16_effective": 8.0, "cos_min": 0.9}))
    sel = (
        'runner = "static", select = "best", by = "ratio_fp16_effective", '
        'where = [{ metric = "cos_min", op = ">=", value = 0.99 }]'
    )
    claim = evaluate(
        parse_policy(one_claim('{ metric = "cos_min", op = ">=", value = 0.99 }', sel)),
        ledger.entries(),
    ).claim("C")
    assert claim.state == "fail" and "no evidence meets" in claim.note


def test_subject_and_predicate_type_selectors(ledger: Ledger) -> None:
    add(
        ledger,
        statement("static", {"out_cos": 0.999}, subject=("a", "11" * 32)),
        statement("static", {"out_cos": 0.5}, subject=("b", "22" * 32)),
    )
    check = '{ metric = "out_cos", op = ">=", value = 0.99 }'
    sel = (
        'predicate_type = "https://evledger.dev/predicates/evidence/v1", subject = "sha256:'
        + ("11" * 32)
        + '"'
    )
    assert evaluate(parse_policy(one_claim(check, sel)), ledger.entries()).go
    assert not evaluate(parse_policy(one_claim(check)), ledger.entries()).go


BAD = {
    "unknown op": (one_claim('{ metric = "cos_min", op = "=>", value = 1 }'), "unknown op '=>'"),
    "missing field": (
        HEAD + '[[claims]]\nid = "C"\nrequired = true\nevidence = { runner = "static" }\n'
        'checks = [{ metric = "cos_min", op = ">=", value = 1 }]\n',
        "missing field 'title'",
    ),
    "missing value": (one_claim('{ metric = "cos_min", op = ">=" }'), "missing field 'value'"),
    "bad predicate type": (
        one_claim(
            '{ metric = "cos_min", op = ">=", value = 1 }',
            'predicate_type = "https://evledger.dev/predicates/nope/v1"',
        ),
        "bad predicate type",
    ),
    "not a uri": (
        one_claim('{ metric = "cos_min", op = ">=", value = 1 }', 'predicate_type = "static"'),
        "bad predicate type 'static' (not a URI)",
    ),
    "unknown runner": (
        one_claim('{ metric = "cos_min", op = ">=", value = 1 }', 'runner = "statik"'),
        "unknown runner 'statik'",
    ),
    "string value": (
        one_claim('{ metric = "cos_min", op = ">=", value = "0.9" }'),
        "strings are never evaluated",
    ),
    "bool ordering": (
        one_claim('{ metric = "go", op = ">", value = true }'),
        "cannot compare a boolean",
    ),
    "best without by": (
        one_claim(
            '{ metric = "cos_min", op = ">=", value = 1 }', 'runner = "static", select = "best"'
        ),
        "needs 'by'",
    ),
    "no claims": (HEAD + "claims = []\n", "non-empty list"),
    "not toml": ("name = ", "not valid TOML"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_policies(case: str) -> None:
    text, message = BAD[case]
    with pytest.raises(Exception, match=None) as info:
        parse_policy(text)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_every_mistake_is_listed() -> None:
    text = one_claim('{ metric = "cos_min", op = "=>", value = "x" }', 'runner = "statik"')
    with pytest.raises(PolicyError) as info:
        parse_policy(text)
    assert len(info.value.problems) == 3


def test_unknown_metric_is_a_warning() -> None:
    policy = parse_policy(one_claim('{ metric = "speed_of_light", op = ">", value = 1 }'))
    assert policy.warnings == ("claims[0] (C).checks[0].metric: unknown metric 'speed_of_light'",)


def test_packaged_policies_valid_and_copied_by_init(ledger: Ledger) -> None:
    assert {"v37", "v38"} <= set(packaged_policy_names())
    for name in packaged_policy_names():
        policy = resolve_policy(name)
        assert policy.warnings == ()
    assert ledger.store.read_path("HEAD", "policies/v37.toml") is not None
    used = resolve_policy(None, ledger.view(), ledger=ledger)
    assert used.source.startswith("packaged v37 (sha256:") and used.signed
    assert used.warnings == ()  # the copy init made is the packaged text: nothing to warn of


def test_v37_is_no_go_because_of_ffn_sota(ledger: Ledger) -> None:
    res = evaluate_ledger(example_ledger(ledger))
    states = {c.id: c.state for c in res.claims}
    assert states == {
        "V80": "pass",
        "V38": "pass",
        "V39-0.94": "pass",
        "V39-0.99": "pass",
        "V42": "pass",
        "V43": "fail",  # its figures pass, but above the Gaussian reference, unreproduced
        "TNSEC": "pass",
        "FFN_SOTA": "fail",
        "V36": "pass",
    }
    assert not res.go and res.to_json()["blocking"] == ["FFN_SOTA"]
    ffn = res.claim("FFN_SOTA")
    assert ffn.source is not None and ffn.source.runner == "pareto"
    assert ffn.reasons() == ["ratio_fp16_effective = 5.65 (needs >= 16)"]
    [why] = res.claim("V43").reasons()
    assert "above the Gaussian reference 2.387x" in why and "needs a verified reproduction" in why
    assert all(c.ok for c in res.claim("V43").checks)
    tnsec = res.claim("TNSEC")
    assert tnsec.source is not None and tnsec.source.runner == "evidence.breakthrough.v1"


def test_v38_is_no_go_because_of_the_ratio(ledger: Ledger) -> None:
    res = evaluate_ledger(example_ledger(ledger), resolve_policy("v38"))
    assert not res.go and res.to_json()["blocking"] == ["V38"]
    assert res.claim("V38").reasons() == ["ratio_fp16_effective = 4.69 (needs >= 20)"]


def test_gate_changes_between_revisions(ledger: Ledger) -> None:
    policy = resolve_policy("v37")
    old_rev = ledger.store.resolve()
    assert old_rev is not None
    example_ledger(ledger)
    old = evaluate_ledger(ledger, policy, rev=old_rev)
    new = evaluate_ledger(ledger, policy)
    assert all(c.state == "missing" for c in old.claims)
    changes = {c.id: (c.old, c.new) for c in gate_changes(old, new)}
    assert changes["V80"] == ("missing", "pass") and changes["FFN_SOTA"] == ("missing", "fail")


def test_load_policy_file_errors(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="no such policy file"):
        resolve_policy(str(tmp_path / "nope.toml"))
    with pytest.raises(Exception, match="no verified policy entry named 'v99' and no packaged"):
        resolve_policy("v99")


def test_evidence_marked_structured_may_pass_above_the_bound(ledger: Ledger) -> None:
    """A ratio above the Gaussian reference, with no data-dependent bound, cannot pass
    (needs-reproduction) unless the evidence says its data is structured."""
    policy = parse_policy(one_claim('{ metric = "cos_min", op = ">=", value = 0.99 }'))
    claimed = statement("static", {"ratio_fp16_effective": 9.0, "cos_min": 0.999})
    [plain_entry] = add(ledger, claimed)
    plain = evaluate(policy, [plain_entry]).claims[0]
    assert plain.state == "fail" and "needs a verified reproduction" in plain.physics
    claimed["predicate"]["rate_distortion"] = {"structured": True}
    [marked_entry] = add(ledger, claimed)
    marked = evaluate(policy, [marked_entry]).claims[0]
    assert marked.state == "pass" and marked.physics == ""
