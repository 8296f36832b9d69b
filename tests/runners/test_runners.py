"""Runners end to end on a tiny real .safetensors file; model input, registry, determinism."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from ledger.errors import InputError, UsageError
from runners.base import Param, resolve_params
from runners.model import ModelSource
from runners.pq import kmeans, pq_compress
from runners.proxy import delta_decode, delta_encode
from runners.registry import RUNNERS, get_runner, list_runners
from runners.statement import run_runner, to_json_safe, validate_statement

MINE = ("static", "pareto", "pq", "proxy", "entropy")
FAST = {
    "static": {"rank": "2"},
    "pareto": {"method": "grid", "bits_grid": "2,4,8", "group_grid": "16,32"},
    "pq": {"codebook_size": "16", "subvector_dim": "2"},
    "proxy": {},
    "entropy": {"level": "3"},
}


def test_registry_lists_the_built_ins_first() -> None:
    """The built-in runners by name (plug-ins follow), lazily imported; unknown names are usage
    errors."""
    builtins = [
        *("static", "pareto", "pq", "hessian", "proxy", "entropy", "memory", "compare"),
        *("ecsq", "tcq"),
    ]
    assert list_runners()[: len(builtins)] == builtins
    assert set(RUNNERS) == set(builtins)
    for name in MINE:
        r = get_runner(name)
        assert r.name == name and r.version and r.description and r.params
    with pytest.raises(UsageError, match="unknown runner"):
        get_runner("nope")


def test_param_parsing() -> None:
    """Params parse by type; unknown names and bad values raise UsageError."""
    r = get_runner("static")
    p = resolve_params(r, {"bits": "3", "rank": 1})
    assert p["bits"] == 3 and p["rank"] == 1 and p["group_size"] == 64
    with pytest.raises(UsageError, match="unknown param"):
        resolve_params(r, {"bitz": "3"})
    with pytest.raises(UsageError, match="not a valid int"):
        resolve_params(r, {"bits": "four"})
    with pytest.raises(UsageError, match="maximum"):
        resolve_params(r, {"bits": "9"})
    assert Param("x", False, "h", "bool").parse("yes") is True
    with pytest.raises(UsageError):
        Param("x", 1.0, "h", "float").parse("nan")


def test_model_source_classifies(tiny_model: Path) -> None:
    """Linear matrices count; embeddings, norms and biases are reported apart."""
    m = ModelSource(tiny_model)
    names = [t.name for t in m.matrix_infos()]
    assert names == sorted(names) and len(names) == 4
    assert "embed_tokens.weight" not in names
    s = m.summary()
    assert s["embedding"]["count"] == 1 and s["norm"]["count"] == 1 and s["bias"]["count"] == 1
    assert s["counted"]["params"] == 64 * 32 * 2 + 128 * 32 * 2
    assert len(ModelSource(tiny_model, matrices="all2d").matrix_infos()) == 5
    assert len(ModelSource(tiny_model, matrices="ffn").matrix_infos()) == 2
    f = m.files()[0]
    assert f.name == "tiny.safetensors" and len(f.sha256) == 64


def test_model_source_folder_and_shards(tmp_path: Path) -> None:
    """A folder with an index of shards reads every shard."""
    from safetensors.torch import save_file

    save_file({"a.weight": torch.randn(8, 8)}, str(tmp_path / "m-1.safetensors"))
    save_file({"b.weight": torch.randn(8, 8)}, str(tmp_path / "m-2.safetensors"))
    (tmp_path / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"a.weight": "m-1.safetensors", "b.weight": "m-2.safetensors"}})
    )
    m = ModelSource(tmp_path)
    assert [f.name for f in m.files()] == ["m-1.safetensors", "m-2.safetensors"]
    assert [t.name for t in m.matrix_infos()] == ["a.weight", "b.weight"]


@pytest.mark.parametrize("case", ["missing", "text", "short", "bad_header", "no_2d", "escape"])
def test_model_source_hostile_inputs(tmp_path: Path, case: str) -> None:
    """Every bad input is an InputError naming the problem, never a traceback."""
    from safetensors.torch import save_file

    p = tmp_path / "m.safetensors"
    if case == "text":
        p.write_text("hello, I am not a model\n" * 10)
    elif case == "short":
        p.write_bytes(b"\x01\x02")
    elif case == "bad_header":
        p.write_bytes((20).to_bytes(8, "little") + b"{not json at all!!!}" + b"\0" * 8)
    elif case == "no_2d":
        save_file({"v": torch.ones(4)}, str(p))
    elif case == "escape":
        outside = tmp_path / "outside.safetensors"
        save_file({"w": torch.ones(4, 4)}, str(outside))
        folder = tmp_path / "folder"
        folder.mkdir()
        os.symlink(outside, folder / "model.safetensors")
        p = folder
    with pytest.raises(InputError) as exc:
        ModelSource(p)
    assert str(exc.value)


def test_kmeans_is_deterministic_under_a_seed() -> None:
    """Same seed, same centroids; a different seed starts elsewhere."""
    x = torch.randn(500, 4, generator=torch.Generator().manual_seed(0))
    a = kmeans(x, 8, 5, seed=1)
    b = kmeans(x, 8, 5, seed=1)
    c = kmeans(x, 8, 0, seed=2)
    assert torch.equal(a, b)
    assert not torch.equal(kmeans(x, 8, 0, seed=1), c)


def test_kmeans_finds_obvious_clusters() -> None:
    """Four well-separated blobs are recovered exactly as centroids."""
    centers = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    x = centers.repeat_interleave(25, dim=0)
    got = kmeans(x, 4, 10, seed=0)
    assert sorted(map(tuple, got.tolist())) == sorted(map(tuple, centers.tolist()))


def test_pq_bytes_include_codebook() -> None:
    """16 centroids of dim 2 in fp16 = 64 B; 4-bit indices of 8*6/2 = 24 sub-vectors = 12 B."""
    w = torch.randn(8, 6, generator=torch.Generator().manual_seed(0))
    cm = pq_compress(w, 2, 16, 3, 1000, 0)
    assert cm.bytes_by_part() == {"codes": 12, "codebook": 64}
    assert cm.w_hat.shape == w.shape


def test_delta_transform_inverts() -> None:
    """Row-delta mod 2^bits is reversible."""
    codes = np.random.default_rng(0).integers(0, 16, size=(5, 9)).astype(np.uint8)
    assert np.array_equal(delta_decode(delta_encode(codes, 4), 4), codes)


def test_json_safety() -> None:
    """NaN/inf raise; big integers become strings."""
    assert to_json_safe({"a": 2**60, "b": 1}) == {"a": str(2**60), "b": 1}
    with pytest.raises(ValueError, match="non-finite"):
        to_json_safe({"x": float("nan")})


@pytest.mark.parametrize("name", MINE)
def test_runner_end_to_end_on_tiny_model(tiny_model: Path, name: str) -> None:
    """Each runner: valid statement, determinism delta 0, bytes and subject consistent."""
    runner = get_runner(name)
    model = ModelSource(tiny_model)
    seen: list[tuple[str, int, int]] = []
    st = run_runner(
        runner, model, FAST[name], repeat=2, progress=lambda label, d, t: seen.append((label, d, t))
    )
    validate_statement(st)
    json.dumps(st, allow_nan=False)
    assert st["_type"] == "https://in-toto.io/Statement/v1"
    assert st["predicateType"] == f"https://evledger.dev/predicates/{name}/v1"
    assert st["subject"][0]["name"] == "tiny.safetensors"
    assert st["subject"][0]["digest"]["sha256"] == model.files()[0].sha256
    pred = st["predicate"]
    det = pred["determinism"]
    assert det["runs"] == 2 and det["delta"] == 0 and det["digests_equal"]
    assert pred["metrics"]["determinism_delta"] == 0
    assert pred["environment"]["threads"] >= 1 and "seeds" in pred["environment"]
    m = pred["metrics"]
    assert 0 < m["ratio_fp16_effective"]
    assert -1 <= m["cos_min"] <= 1
    rows = pred["rows"]
    assert len(rows) == 4
    assert sum(r["bytes_total"] for r in rows) == m["bytes_total"]
    assert m["ratio_fp16_effective"] == pytest.approx(m["bytes_fp16"] / m["bytes_total"])
    assert pred["rate_distortion"]["model"] == "gaussian"
    assert seen and seen[-1][1] == seen[-1][2]


def test_static_bytes_on_tiny_model(tiny_model: Path) -> None:
    """static 4-bit g32: codes n/2 B, one fp16 scale + zero per 32 values."""
    st = run_runner(get_runner("static"), ModelSource(tiny_model), {"bits": 4, "group_size": 32})
    m = st["predicate"]["metrics"]
    n = 64 * 32 * 2 + 128 * 32 * 2
    assert m["bytes_codes"] == n // 2
    assert m["bytes_scales"] == m["bytes_zeros"] == 2 * n // 32
    assert m["ratio_fp16_effective"] == pytest.approx(16 / 5)  # 4 bits + 32/32 overhead


def test_entropy_gain_on_peaked_codes(tmp_path: Path) -> None:
    """Gaussian weights in wide groups give peaked codes: zstd beats fixed width."""
    from safetensors.torch import save_file

    w = torch.randn(256, 256, generator=torch.Generator().manual_seed(0))
    p = tmp_path / "g.safetensors"
    save_file({"l.weight": w}, str(p))
    st = run_runner(
        get_runner("entropy"), ModelSource(p), {"bits": 4, "group_size": 256, "level": 19}
    )
    m = st["predicate"]["metrics"]
    assert m["entropy_gain_ok"] is True
    assert m["bytes_entropy"] < m["bytes_fixed_width"] == 256 * 256 // 2
    assert m["shannon_entropy_bits"] < 4
    assert m["bytes_total"] == m["bytes_entropy"] + m["bytes_scales"] + m["bytes_zeros"]


def test_pareto_frontier_and_targets(tiny_model: Path) -> None:
    """Frontier is sorted by ratio with cos_min falling; 8-bit reaches 0.99."""
    st = run_runner(get_runner("pareto"), ModelSource(tiny_model), FAST["pareto"])
    pred = st["predicate"]
    front = pred["frontier"]
    assert [p["ratio"] for p in front] == sorted(p["ratio"] for p in front)
    assert all(a["cos_min"] > b["cos_min"] for a, b in itertools.pairwise(front))
    m = pred["metrics"]
    assert m["feasible_at_cos_099"] and m["ratio_at_cos_099"] == m["ratio_fp16_effective"]
    assert m["cos_min"] >= 0.99
    assert m["ratio_at_cos_094"] >= m["ratio_at_cos_099"]


def test_validate_statement_rejects_bad_predicate(tiny_model: Path) -> None:
    """A predicate with a missing metric fails its schema."""
    st = run_runner(get_runner("static"), ModelSource(tiny_model), {})
    del st["predicate"]["metrics"]["cos_min"]
    with pytest.raises(ValueError, match="cos_min"):
        validate_statement(st)
