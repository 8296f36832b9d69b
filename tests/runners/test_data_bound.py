"""Every built-in runner whose weights are at hand records the data-dependent bound, and the
physics check uses it: a result above the Gaussian reference on heavy-tailed weights, from a
runner that is not one of the rate-distortion runners, is within the bound, not a claim that
needs a reproduction."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from evidence_factory import add
from safetensors.torch import save_file

from ledger.api import Ledger
from ledger.ratedistortion import bound_ratio, physics_of
from runners import physics
from runners.model import ModelSource
from runners.registry import get_runner
from runners.statement import run_runner, validate_statement


def _heavy_tailed(path: Path, df: float = 1.2) -> Path:
    """Two Student-t matrices (df 1.2: a few huge weights carry almost all the energy)."""
    torch.manual_seed(0)
    t = torch.distributions.StudentT(torch.tensor(df))
    save_file(
        {
            "layers.0.mlp.up_proj.weight": (t.sample((256, 256)) * 0.01).contiguous(),
            "layers.0.mlp.down_proj.weight": (t.sample((256, 256)) * 0.01).contiguous(),
        },
        str(path),
    )
    return path


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("static", {}),
        ("proxy", {}),
        ("entropy", {}),
        ("pq", {"codebook_size": 16, "train_samples": 512, "iters": 2}),
        ("hessian", {"matrices": "linear"}),
        ("pareto", {}),
        ("ecsq", {}),
    ],
)
def test_statement_records_the_bound_over_every_row(
    tiny_model: Path, name: str, params: dict
) -> None:
    st = run_runner(get_runner(name), ModelSource(tiny_model), params)
    validate_statement(st)
    pred = st["predicate"]
    rows = pred["rows"]
    assert rows and all("rd_data_bound_bits" in r and "rd_data_gap_bits" in r for r in rows)
    n = sum(r["params"] for r in rows)
    bits = sum(r["params"] * r["rd_data_bound_bits"] for r in rows) / n
    block = pred["rate_distortion"]["data_bound"]
    assert block["bits_per_weight"] == pytest.approx(bits, rel=1e-12)
    assert pred["metrics"]["rd_data_bound_ratio"] == pytest.approx(16 / bits, rel=1e-12)
    for r in rows:  # at each matrix's own cos, never above the Gaussian reference's bits
        assert r["rd_data_bound_bits"] <= 16 / r["rd_gaussian_ratio"] + 1e-12


def test_older_runner_above_the_gaussian_reference_is_within_the_data_bound(
    ledger: Ledger, tmp_path: Path
) -> None:
    model = ModelSource(_heavy_tailed(tmp_path / "heavy.safetensors"))
    st = run_runner(get_runner("entropy"), model, {})
    m = st["predicate"]["metrics"]
    assert m["ratio_fp16_effective"] > bound_ratio(m["cos_min"])  # above the reference
    [entry] = add(ledger, st)
    assert physics_of(entry).status == "within-data-bound"
    del st["predicate"]["rate_distortion"]["data_bound"]  # the same claim without its bound
    [bare] = add(ledger, st)
    assert physics_of(bare).status == "needs-reproduction"


def test_a_large_matrix_is_estimated_on_evenly_spaced_rows() -> None:
    g = torch.Generator().manual_seed(3)
    w = torch.randn(4096, 512, generator=g)
    sample = physics.sample_rows(w)
    assert sample.shape == (physics.MAX_WEIGHTS // 512, 512)
    assert torch.equal(sample[0], w[0]) and torch.equal(sample[-1], w[-1])
    row = {"cos": 0.99}
    physics.add_data_bound(row, w)
    assert row["rd_data_bound_rows"] == sample.shape[0]
    # Gaussian rows: the gap is ~0, so the bound sits at the Gaussian reference
    assert abs(row["rd_data_gap_bits"]) < 0.05
    assert math.isfinite(row["rd_data_bound_bits"])


def test_row_wise_entropy_estimate_is_the_one_dimensional_one_per_row() -> None:
    g = torch.Generator().manual_seed(4)
    z = torch.randn(5, 300, generator=g).numpy()
    rows = physics._vasicek_rows(z)
    for i in range(5):
        assert rows[i] == pytest.approx(physics._vasicek_bits(z[i]), abs=1e-12)
