"""ecsq: the ANS coder round trip, exact byte counts, and ECSQ against R(D) on a Gaussian."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ledger.ratedistortion import bound_bits
from runners import ecsq_core
from runners.coding import Reader, SymbolModel, decode_chunks, encode_chunks
from runners.ecsq import RUNNER as ECSQ
from runners.measure import ReconstructionDigest
from runners.model import ModelSource
from runners.statement import run_runner, validate_statement


def _gauss(rows: int, cols: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed))


def test_chunks_round_trip_with_their_own_models() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(-7, 8, 5000)
    b = np.round(rng.standard_normal(3000) * 0.3).astype(np.int64)
    ma, mb = SymbolModel.fit(a), SymbolModel.fit(b)
    data = encode_chunks([(a, ma), (b, mb)])
    back = decode_chunks(data, [(a.size, ma), (b.size, mb)])
    assert np.array_equal(back[0], a) and np.array_equal(back[1], b)
    # the coder is close to the models' ideal code length (ANS overhead: a few words)
    ideal = (ma.code_bits(a) + mb.code_bits(b)) / 8
    assert ideal <= len(data) <= ideal * 1.01 + 16
    with pytest.raises(ValueError):
        decode_chunks(data, [(a.size, ma), (b.size - 10, mb)])  # data left over


def test_symbol_model_serialises_exactly() -> None:
    model = SymbolModel.fit(np.array([-3, -3, 0, 1, 1, 1, 5]))
    out = bytearray()
    model.to_bytes(out)
    reader = Reader(bytes(out))
    assert SymbolModel.read(reader) == model
    reader.done()
    with pytest.raises(ValueError):
        SymbolModel.read(Reader(bytes(out[:-1])))


def test_decoded_stream_reproduces_the_reconstruction_digest() -> None:
    w = _gauss(48, 96) * torch.linspace(0.2, 2.0, 48)[:, None]
    cm, code = ecsq_core.compress(w, 0.97, 4, (0.5, 0.4))
    # every byte the decoder reads is in the counted parts, and nothing else is needed
    assert set(cm.parts) == {"header", "contexts", "stream"}
    assert cm.nbytes == sum(len(p) for p in cm.parts.values())
    assert len(cm.parts["contexts"]) == 48 * 2 // 8
    back, w_hat = ecsq_core.decode(dict(cm.parts))
    assert np.array_equal(back.codes, code.codes)
    d1, d2 = ReconstructionDigest(), ReconstructionDigest()
    d1.update(cm.w_hat)
    d2.update(w_hat)
    assert d1.hexdigest() == d2.hexdigest()
    assert ecsq_core.cos_of(w, w_hat) >= 0.97
    with pytest.raises(ValueError):
        ecsq_core.decode({**cm.parts, "header": cm.parts["header"] + b"\x00"})
    bad = bytearray(cm.parts["stream"])
    bad[len(bad) // 2] ^= 0xFF
    try:
        _, w_bad = ecsq_core.decode({**cm.parts, "stream": bytes(bad)})
    except (ValueError, BaseException):  # constriction may reject a broken stream
        return
    assert not torch.equal(w_bad, w_hat)


@pytest.mark.parametrize(("target", "gap"), [(0.8, 0.25), (0.94, 0.27), (0.99, 0.27)])
def test_gaussian_ecsq_lands_near_rate_distortion(target: float, gap: float) -> None:
    """Uniform ECSQ sits ≈ 0.254 bit above R(D) at high rate (the space-filling loss); at
    low rate (cos 0.8) it is within 0.25 bit; headers included."""
    w = _gauss(128, 512)
    cm, _ = ecsq_core.compress(w, target, 1, (0.5, 0.4))
    bits = 8 * cm.nbytes / w.numel()
    assert ecsq_core.cos_of(w, cm.w_hat) >= target
    assert bound_bits(target) < bits <= bound_bits(target) + gap


def test_step_is_the_largest_meeting_the_target() -> None:
    w = _gauss(64, 256)
    step, delta, q = ecsq_core.solve_step(w, 0.95, 0.5)
    rec = ecsq_core.reconstruct(q, step, delta)
    assert ecsq_core.cos_of(w, rec) >= 0.95
    q2 = ecsq_core.quantize(w, step * 1.01, 0.5)
    d2 = ecsq_core.best_shift(w, q2, step * 1.01)
    assert ecsq_core.cos_of(w, ecsq_core.reconstruct(q2, step * 1.01, d2)) < 0.95


def test_runner_statement_on_a_real_file(tiny_model) -> None:
    st = run_runner(ECSQ, ModelSource(tiny_model), {"target_cos": 0.98, "contexts": 2})
    validate_statement(st)
    pred = st["predicate"]
    m, rows = pred["metrics"], pred["rows"]
    assert m["bytes_total"] == sum(r["bytes_total"] for r in rows)
    assert m["bytes_total"] == m["bytes_header"] + m["bytes_stream"] + m["bytes_contexts"]
    assert all(r["cos"] >= 0.98 for r in rows) and m["cos_min"] >= 0.98
    assert m["ratio_model"] < m["ratio_fp16_effective"]  # the embedding stays fp16
    assert m["bytes_model_fp16"] > m["bytes_fp16"]
    assert "layer_out_cos_min" in m and "out_cos" not in m
    assert pred["functional"]["metric"] is None and pred["functional"]["reason"]
    assert pred["determinism"]["digests_equal"] and m["determinism_delta"] == 0
    assert pred["rate_distortion"]["model"] == "gaussian-reference"
    assert pred["rate_distortion"]["data_bound"]["bits_per_weight"] > 0


def test_gptq_feedback_lowers_the_layer_output_error_on_the_same_grid() -> None:
    g = torch.Generator().manual_seed(4)
    w = torch.randn(32, 64, generator=g)
    mix = torch.randn(64, 64, generator=g)
    x = torch.randn(512, 64, generator=g) @ mix  # correlated inputs, where feedback pays
    plain, _ = ecsq_core.compress(w, 0.97, 1, (0.5,))
    fb = ecsq_core.compress_feedback(w, x, 0.97, 1)
    assert fb.info["step"] == plain.info["step"]
    err_plain = (x @ (w - plain.w_hat).T).norm()
    err_fb = (x @ (w - fb.w_hat).T).norm()
    assert err_fb < 0.9 * err_plain
    _back, w_hat = ecsq_core.decode(dict(fb.parts))
    assert torch.equal(w_hat, fb.w_hat)


def test_runner_with_feedback(tiny_model) -> None:
    st = run_runner(ECSQ, ModelSource(tiny_model), {"target_cos": 0.97, "feedback": "gptq"})
    validate_statement(st)
    assert "feedback" in st["predicate"]["method"]
    assert st["predicate"]["determinism"]["digests_equal"]
