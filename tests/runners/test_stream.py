"""Row-block streaming (runners.stream): same bytes, digest and metrics as whole matrices."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import torch
from compressed_models import awq_pack, gptq_tensors, rtn_codes
from safetensors.torch import save_file

from runners import compare as compare_mod
from runners import stream
from runners.formats.gptq import PackedCheckpoint
from runners.gptq import _hinv_upper, gptq, gptq_rows, hinv_upper_lean
from runners.measure import ReconstructionDigest, cosine, scalar_compress
from runners.model import ModelSource
from runners.registry import get_runner
from runners.statement import run_runner

SMALL = 600  # values per block: forces several blocks on the test matrices


def _bare(path: Path, shapes: dict[str, tuple[int, int]], seed: int = 0) -> Path:
    g = torch.Generator().manual_seed(seed)
    save_file(
        {n: (torch.randn(*s, generator=g) * 0.05).half() for n, s in shapes.items()}, str(path)
    )
    return path


def _close(a: object, b: object, rel: float = 1e-12) -> None:
    """Equal, floats within `rel` (float64 sums regrouped), recursively."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys()
        for k in a:
            _close(a[k], b[k], rel)
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _close(x, y, rel)
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=rel, abs=1e-15)
    else:
        assert a == b


def test_row_blocks_start_on_unit_boundaries() -> None:
    assert stream.row_blocks(10, 7, budget=1000) == [(0, 10)]
    for rows, cols, unit, budget in ((96, 40, 64, 600), (100, 30, 24, 200), (33, 4096, 8, 5000)):
        blocks = stream.row_blocks(rows, cols, unit, budget)
        assert blocks[0][0] == 0 and blocks[-1][1] == rows
        assert all(a[1] == b[0] for a, b in itertools.pairwise(blocks))
        assert all((r0 * cols) % unit == 0 for r0, _ in blocks)


def test_running_cosine_one_piece_is_cosine_bit_for_bit() -> None:
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(50, 30, generator=g), torch.randn(50, 30, generator=g)
    one = stream.RunningCosine()
    one.update(a, b)
    assert one.value() == cosine(a, b)
    many = stream.RunningCosine()
    for r in range(0, 50, 7):
        many.update(a[r : r + 7], b[r : r + 7])
    assert many.value() == pytest.approx(cosine(a, b), rel=1e-14)
    zero = stream.RunningCosine()
    zero.update(torch.zeros(4), torch.zeros(4))
    zero.update(torch.zeros(4), torch.zeros(4))
    assert zero.value() == 1.0


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_static_blocks_give_the_whole_matrix_bytes_and_reconstruction(
    tmp_path: Path, bits: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 96x40 with groups of 64: groups straddle rows, the last one is padded
    model = ModelSource(_bare(tmp_path / "m.safetensors", {"layers.0.weight": (96, 40)}))
    info = model.matrix_infos()[0]
    w = model.load(info)
    whole = scalar_compress(w, bits, 64)
    monkeypatch.setattr(stream, "ROW_CHUNK_ELEMS", SMALL)
    got: list[dict[str, bytes]] = []
    digest = ReconstructionDigest()
    x = torch.randn(16, 40, generator=torch.Generator().manual_seed(1))
    row, w_hat = stream.scalar_matrix(model, info, bits, 64, x, digest, True, got.append)
    assert len(got) > 1
    for part, data in whole.parts.items():
        assert b"".join(g[part] for g in got) == data
    ref = ReconstructionDigest()
    ref.update(whole.w_hat)
    assert digest.hexdigest() == ref.hexdigest()
    assert w_hat is not None and torch.equal(w_hat, whole.w_hat)
    from runners.measure import matrix_row

    _close(row, matrix_row(info, w, whole, x))


def test_static_runner_streamed_equals_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _bare(tmp_path / "m.safetensors", {"a.weight": (96, 40), "b.weight": (64, 72)})
    params = {"bits": 3, "group_size": 64, "calibration": "gaussian"}
    whole = run_runner(get_runner("static"), ModelSource(path), params)
    monkeypatch.setattr(stream, "ROW_CHUNK_ELEMS", SMALL)
    blocks = run_runner(get_runner("static"), ModelSource(path), params)
    a, b = whole["predicate"], blocks["predicate"]
    assert a["determinism"]["reconstruction_digest"] == b["determinism"]["reconstruction_digest"]
    _close(a["rows"], b["rows"])
    _close(a["metrics"], b["metrics"])


@pytest.mark.parametrize(("n", "solve_cols"), [(24, 256), (40, 7), (600, 256)])
def test_hinv_upper_lean_is_hinv_upper_bit_for_bit(
    n: int, solve_cols: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import runners.gptq

    monkeypatch.setattr(runners.gptq, "SOLVE_COLS", solve_cols)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(n + 16, n, generator=g).double()
    x[:, 3] = 0.0  # a dead input column
    h = 2.0 * (x.T @ x)
    ref_h = h.clone()
    dead = torch.diagonal(ref_h) == 0
    ref_h[dead, dead] = 1.0
    ref = _hinv_upper(ref_h, 0.01).to(torch.float32)
    got_dead, got = hinv_upper_lean(lambda: 2.0 * (x.T @ x), 0.01)
    assert torch.equal(got_dead, dead)
    assert torch.equal(got, ref)


def test_gptq_rows_in_blocks_equal_gptq_whole() -> None:
    g = torch.Generator().manual_seed(6)
    w = torch.randn(96, 256, generator=g) * 0.05
    x = torch.randn(300, 256, generator=g)
    h = 2.0 * (x.double().T @ x.double())
    whole = gptq(w, h, 4, 64)
    dead, hinv = hinv_upper_lean(lambda: h.clone(), 0.01)
    parts = [gptq_rows(w[r : r + 24], hinv, dead, 4, 64) for r in range(0, 96, 24)]
    assert torch.equal(torch.cat([p.codes for p in parts]), whole.codes)
    assert torch.equal(torch.cat([p.weight for p in parts]), whole.weight)
    assert torch.equal(torch.cat([p.scale for p in parts]), whole.scale)


def test_hessian_runner_streamed_equals_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _bare(tmp_path / "m.safetensors", {"a.weight": (96, 256), "b.weight": (40, 128)})
    params = {"bits": 3, "group_size": 64, "matrices": "linear"}
    whole = run_runner(get_runner("hessian"), ModelSource(path), params)
    monkeypatch.setattr(stream, "ROW_CHUNK_ELEMS", 2048)
    blocks = run_runner(get_runner("hessian"), ModelSource(path), params)
    a, b = whole["predicate"], blocks["predicate"]
    assert a["determinism"]["reconstruction_digest"] == b["determinism"]["reconstruction_digest"]
    _close(a["rows"], b["rows"])
    _close(a["metrics"], b["metrics"])


def _gptq_file(folder: Path, w: dict[str, torch.Tensor], bits: int, act_order: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for name, t in w.items():
        parts, _ = gptq_tensors(t.float(), bits, 32, act_order)
        for k, v in parts.items():
            tensors[f"{name.removesuffix('.weight')}.{k}"] = v
    save_file(tensors, str(folder / "model.safetensors"))
    qc = {"quant_method": "gptq", "bits": bits, "group_size": 32, "desc_act": act_order}
    (folder / "config.json").write_text(json.dumps({"quantization_config": qc}))
    return folder


@pytest.mark.parametrize(("bits", "act_order"), [(4, False), (3, True), (2, False)])
def test_gptq_reader_rows_equal_whole(tmp_path: Path, bits: int, act_order: bool) -> None:
    g = torch.Generator().manual_seed(7)
    ck = PackedCheckpoint(
        _gptq_file(tmp_path / "g", {"l.weight": torch.randn(96, 64, generator=g)}, bits, act_order)
    )
    assert ck.row_shape("l.weight") == (96, 64)
    whole = ck.load("l.weight")
    rows = [ck.load_rows("l.weight", r, min(r + 32, 96)) for r in range(0, 96, 32)]
    assert torch.equal(torch.cat([r.w_hat for r in rows]), whole.w_hat)
    assert rows[0].parts == whole.parts


def test_awq_reader_rows_equal_whole(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(8)
    w = torch.randn(64, 64, generator=g)
    codes, scales, zeros, _ = rtn_codes(w, 4, 32)
    folder = tmp_path / "a"
    folder.mkdir()
    save_file(
        {
            "l.qweight": awq_pack(codes.T.contiguous()),
            "l.qzeros": awq_pack(zeros),
            "l.scales": scales.half(),
        },
        str(folder / "model.safetensors"),
    )
    qc = {"quant_method": "awq", "bits": 4, "group_size": 32, "version": "gemm"}
    (folder / "config.json").write_text(json.dumps({"quantization_config": qc}))
    ck = PackedCheckpoint(folder)
    whole = ck.load("l.weight")
    rows = [ck.load_rows("l.weight", r, r + 32) for r in (0, 32)]
    assert torch.equal(torch.cat([r.w_hat for r in rows]), whole.w_hat)


def test_compare_runner_streamed_equals_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shapes = {"a.weight": (96, 64), "b.weight": (64, 128)}
    orig = _bare(tmp_path / "orig.safetensors", shapes)
    src = ModelSource(orig)
    comp = _gptq_file(
        tmp_path / "g", {i.name: src.load(i) for i in src.matrix_infos()}, 4, act_order=False
    )
    params = {"compressed": str(comp), "functional": "false"}
    monkeypatch.setattr(compare_mod, "_COS_CHUNK", 2048)  # both runs: the same cosine chunks
    whole = run_runner(get_runner("compare"), ModelSource(orig), params)
    calls: list[tuple[int, int]] = []
    real = PackedCheckpoint.load_rows

    def spy(self: PackedCheckpoint, name: str, r0: int, r1: int):
        calls.append((r0, r1))
        return real(self, name, r0, r1)

    monkeypatch.setattr(PackedCheckpoint, "load_rows", spy)
    monkeypatch.setattr(stream, "ROW_CHUNK_ELEMS", 2048)
    blocks = run_runner(get_runner("compare"), ModelSource(orig), params)
    assert len(calls) > 4  # both matrices read in several blocks, twice
    a, b = whole["predicate"], blocks["predicate"]
    assert a["determinism"]["reconstruction_digest"] == b["determinism"]["reconstruction_digest"]
    # weight cosines sum the same chunks in the same order; layer outputs come in
    # column blocks of the same matmul (equal up to the BLAS kernel's blocking)
    for ra, rb in zip(a["rows"], b["rows"], strict=True):
        assert ra["cos"] == rb["cos"]
        _close(ra, rb, rel=1e-6)
    _close(a["metrics"], b["metrics"], rel=1e-6)


@pytest.mark.parametrize("shape", [(600, 4096), (40, 64)])
def test_row_sample_gives_the_whole_matrix_data_bound(shape: tuple[int, int]) -> None:
    from runners.physics import add_data_bound

    w = torch.randn(*shape, generator=torch.Generator().manual_seed(9))
    ref: dict = {"cos": 0.99}
    add_data_bound(ref, w)
    sample = stream.RowSample(*shape)
    for r in range(0, shape[0], 56):
        sample.update(r, w[r : r + 56])
    got: dict = {"cos": 0.99}
    sample.add_bound(got)
    assert got == ref
    assert ("rd_data_bound_rows" in got) == (shape[0] == 600)
