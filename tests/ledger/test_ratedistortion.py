"""The physics check: Gaussian reference, data-dependent bound, needs-reproduction, settle."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from evidence_factory import add, statement

from ledger.api import Ledger, init_ledger
from ledger.gate import evaluate, parse_policy
from ledger.metricnames import with_aliases
from ledger.ratedistortion import (
    bound_bits,
    bound_ratio,
    combine_bounds,
    physics_of,
    settle,
    slb_bits,
)
from runners.physics import data_bound

COS = 0.99


def _claim(ratio: float, bound: dict | None = None) -> dict:
    st = statement("ecsq", {"ratio_fp16_effective": ratio, "cos_min": COS})
    if bound is not None:
        st["predicate"]["rate_distortion"] = {"model": "gaussian-reference", "data_bound": bound}
    return st


def _laplace_bound() -> tuple[float, float]:
    torch.manual_seed(0)
    w = torch.distributions.Laplace(0.0, 1.0).sample((256, 512))
    db = data_bound(w)
    return slb_bits(COS, db.gap_bits), db.error_bits


def test_gaussian_matrix_has_no_gap_beyond_its_error() -> None:
    w = torch.randn(256, 512, generator=torch.Generator().manual_seed(0))
    db = data_bound(w)
    # the row-wise m-spacing estimate is biased low (≈ 0.03 bit at 512 samples a row), which
    # only makes the bound more permissive; the pooled estimate sits at 0 within its error
    assert abs(db.pooled_gap_bits) < 0.01
    assert 0.0 <= db.gap_bits < 0.05


def test_laplacian_bound_is_below_the_gaussian_one() -> None:
    bits, err = _laplace_bound()
    gauss = bound_bits(COS)
    # h(Laplace) is ½·log2(π/e) ≈ 0.104 bit below the Gaussian of equal power
    assert gauss - bits == pytest.approx(0.5 * math.log2(math.pi / math.e), abs=0.03)
    assert 0 < err < 0.05


def test_a_result_between_the_two_is_not_flagged(ledger: Ledger) -> None:
    bits, err = _laplace_bound()
    ref = bound_ratio(COS)
    data = 16 / bits
    between = 0.5 * (ref + data)
    assert ref < between < data
    block = {"bits_per_weight": bits, "error_bits": err}
    [ok, beyond] = add(ledger, _claim(between, block), _claim(16 / (bits - err) * 1.02, block))
    assert physics_of(ok).status == "within-data-bound"
    assert physics_of(beyond).status == "implausible"
    policy = parse_policy(
        'name = "t"\n[[claims]]\nid = "C"\ntitle = "c"\nrequired = true\n'
        'evidence = { runner = "ecsq", select = "latest" }\n'
        'checks = [{ metric = "cos_min", op = ">=", value = 0.99 }]\n'
    )
    assert not evaluate(policy, [ok]).claims[0].physics
    assert evaluate(policy, [ok]).go
    assert not evaluate(policy, [beyond]).go


def test_above_the_reference_without_weights_needs_reproduction(
    ledger: Ledger, tmp_path: Path
) -> None:
    ratio = bound_ratio(COS) * 1.03
    [claim] = add(ledger, _claim(ratio))
    physics = physics_of(claim)
    assert physics.status == "needs-reproduction"
    policy = parse_policy(
        'name = "t"\n[[claims]]\nid = "C"\ntitle = "c"\nrequired = true\n'
        'evidence = { runner = "ecsq", select = "latest" }\n'
        'checks = [{ metric = "cos_min", op = ">=", value = 0.99 }]\n'
    )
    assert not evaluate(policy, [claim]).go
    repro = _claim(ratio)
    repro["predicateType"] = "https://evledger.dev/predicates/reproduction/v1"
    repro["predicate"]["claim"] = {
        "seq": claim.seq,
        "digest": claim.digest,
        "predicate_type": claim.predicate_type,
    }
    repro["predicate"]["verdict"] = "reproduced"
    repro["predicate"]["deltas"] = {}
    [same_key] = add(ledger, repro, kind="reproduction")
    assert settle(physics, claim, [same_key]).status == "needs-reproduction"
    bob, _ = init_ledger(tmp_path / "bob", "bob")
    [other] = add_as(bob, repro, "bob")
    settled = settle(physics, claim, [other])
    assert settled.status == "reproduced" and f"seq {other.seq}" in settled.note
    diverged = {**repro, "predicate": {**repro["predicate"], "verdict": "diverged"}}
    [bad] = add_as(bob, diverged, "bob")
    assert settle(physics, claim, [bad]).status == "needs-reproduction"


def add_as(ledger: Ledger, st: dict, key: str):
    from ledger.api import Prepared

    return ledger.append_prepared([Prepared(st, "reproduction", "test")], key_name=key)


def test_combined_bound_weights_matrices_by_size() -> None:
    b = combine_bounds([(100, 2.0, 0.01), (300, 3.0, 0.03)])
    assert b.bits_per_weight == pytest.approx(2.75)
    assert b.error_bits == pytest.approx(0.025)
    assert b.ratio_with_error > b.ratio


def test_old_metric_names_stay_readable(ledger: Ledger) -> None:
    [old] = add(ledger, statement("static", {"out_cos": 0.995, "ratio_fp16_effective": 4.0}))
    policy = parse_policy(
        'name = "t"\n[[claims]]\nid = "C"\ntitle = "c"\nrequired = true\n'
        'evidence = { runner = "static", select = "latest" }\n'
        'checks = [{ metric = "layer_out_cos_min", op = ">=", value = 0.99 }]\n'
    )
    assert evaluate(policy, [old]).go
    assert with_aliases({"layer_out_cos_min": 0.9})["out_cos"] == 0.9


def test_below_the_reference_but_beyond_its_own_data_bound_is_implausible(ledger: Ledger) -> None:
    """The bound of each matrix at its own cosine can be tighter than the Gaussian reference
    at cos_min: a claim under the reference that beats it by more than its error is flagged."""
    ref = bound_ratio(COS)
    block = {"bits_per_weight": 16 / (0.8 * ref), "error_bits": 0.01}  # bound at 0.8x the ref
    [under, over] = add(ledger, _claim(0.75 * ref, block), _claim(0.95 * ref, block))
    assert physics_of(under).status == "within-bound"
    beyond = physics_of(over)
    assert beyond.status == "implausible" and "its own weights" in beyond.note
