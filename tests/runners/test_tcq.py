"""tcq: trellis search, decodable streams, and TCQ closer to R(D) than ECSQ on a Gaussian."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ledger.ratedistortion import bound_bits
from runners import ecsq_core, tcq_core
from runners.measure import ReconstructionDigest
from runners.model import ModelSource
from runners.statement import run_runner, validate_statement
from runners.tcq import RUNNER as TCQ


def _gauss(rows: int, cols: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("target", [0.94, 0.99])
def test_tcq_is_closer_to_rate_distortion_than_ecsq(target: float) -> None:
    w = _gauss(64, 1024)
    ce, _ = ecsq_core.compress(w, target, 1, (0.5,))
    ct, _ = tcq_core.compress(w, target, 1, 8, 0.0, ce.info["step"] * 0.56)
    r = bound_bits(target)
    e_bits, t_bits = 8 * ce.nbytes / w.numel(), 8 * ct.nbytes / w.numel()
    assert ecsq_core.cos_of(w, ct.w_hat) >= target
    assert r < t_bits < e_bits
    assert t_bits - r < 0.1  # 8-state TCQ recovers well over half of ECSQ's 0.254-bit loss


def test_more_states_do_not_lose() -> None:
    w = _gauss(32, 1024, seed=3)
    start = 0.5
    bits = {}
    for s in (4, 8, 32):
        cm, _ = tcq_core.compress(w, 0.97, 1, s, 0.0, start)
        bits[s] = cm.nbytes
    assert bits[32] <= bits[8] <= bits[4]


def _greedy(x: np.ndarray, n_states: int) -> np.ndarray:
    """A valid trellis path taken greedily (nearest allowed point at each step)."""
    taps = tcq_core.TAPS[n_states]
    k = np.empty(x.shape, dtype=np.int64)
    for r in range(x.shape[0]):
        s = 0
        for c in range(x.shape[1]):
            u = s & 1
            kv = int(np.floor((x[r, c] - u) / 2 + 0.5))
            k[r, c] = kv
            s = ((s << 1) | ((kv & 1) ^ (bin(s & taps).count("1") & 1))) & (n_states - 1)
    return k


def test_viterbi_beats_any_greedy_path() -> None:
    x = (_gauss(8, 256) / 0.3).to(torch.float64).numpy()
    k = tcq_core.search(torch.from_numpy(x).float(), 1.0, 0.0, np.zeros(8, np.int64), 1, 8)
    _, n = tcq_core.walk(k, 8, tcq_core.TAPS[8])
    _, n_greedy = tcq_core.walk(_greedy(x.astype(np.float32), 8), 8, tcq_core.TAPS[8])
    xf = x.astype(np.float32)
    assert ((xf - n) ** 2).sum() < ((xf - n_greedy) ** 2).sum()
    # and the union constraint holds: n ≡ u (mod 2) along the walked states
    u, n2 = tcq_core.walk(k, 8, tcq_core.TAPS[8])
    assert np.array_equal(n2 % 2, u)


def test_decoded_stream_reproduces_the_reconstruction_digest() -> None:
    w = _gauss(40, 128) * torch.linspace(0.3, 3.0, 40)[:, None]
    cm, code = tcq_core.compress(w, 0.98, 4, 8, 0.1, 0.2)
    assert cm.nbytes == sum(len(p) for p in cm.parts.values())
    back, w_hat = tcq_core.decode(dict(cm.parts))
    assert np.array_equal(back.k, code.k)
    d1, d2 = ReconstructionDigest(), ReconstructionDigest()
    d1.update(cm.w_hat)
    d2.update(w_hat)
    assert d1.hexdigest() == d2.hexdigest()
    with pytest.raises(ValueError):
        tcq_core.decode({**cm.parts, "header": cm.parts["header"][:-1]})


def test_runner_statement_on_a_real_file(tiny_model) -> None:
    st = run_runner(TCQ, ModelSource(tiny_model), {"target_cos": 0.95, "states": 8})
    validate_statement(st)
    m = st["predicate"]["metrics"]
    assert m["cos_min"] >= 0.95
    assert m["bytes_total"] == sum(r["bytes_total"] for r in st["predicate"]["rows"])
    assert m["ratio_model"] < m["ratio_fp16_effective"]
    assert st["predicate"]["determinism"]["digests_equal"]
    assert st["predicate"]["method"]["coder"]["name"] == "constriction"
