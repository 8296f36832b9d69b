"""hessian runner on a causal LM folder: GPTQ on FFN matrices, perplexity before and after.

The model is a tiny random Llama built in the test (no download) with a word-level
tokenizer trained on the built-in texts, saved as a Hugging Face folder.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from runners.causal import CausalLM
from runners.hessian import RUNNER
from runners.model import ModelSource
from runners.registry import get_runner
from runners.statement import run_runner, validate_statement
from runners.texts import HELDOUT, TEXTS


def _tokenizer() -> tuple[Any, Any]:
    """A WordLevel tokenizer trained on the built-in texts (adds <s>): (tokenizers, fast)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(
        list(TEXTS) + list(HELDOUT),
        trainers.WordLevelTrainer(special_tokens=["<unk>", "<s>", "</s>"]),
    )
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", bos)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    return tok, fast


def make_causal_folder(folder: Path, seed: int = 0, init_range: float = 0.2) -> Path:
    """A 2-layer Llama (hidden 64, FFN 128) and a WordLevel tokenizer, saved to `folder`.

    `init_range` (std of the random weights) is larger than Llama's 0.02 so that the random
    network is far from uniform and quantization changes its perplexity measurably.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    tok, fast = _tokenizer()
    bos = tok.token_to_id("<s>")
    torch.manual_seed(seed)
    config = LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        vocab_size=tok.get_vocab_size(),
        max_position_embeddings=64,
        bos_token_id=bos,
        eos_token_id=tok.token_to_id("</s>"),
        initializer_range=init_range,
        tie_word_embeddings=False,
    )
    LlamaForCausalLM(config).save_pretrained(folder, safe_serialization=True)
    fast.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def causal_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of the tiny causal LM folder (built once for this module)."""
    return make_causal_folder(tmp_path_factory.mktemp("tiny-llama"))


def test_causal_lm_loads_and_measures(causal_folder: Path) -> None:
    lm = CausalLM(causal_folder)
    ids = lm.ids(TEXTS[0])
    assert int(ids[0, 0]) == lm.tokenizer.bos_token_id
    ppl = lm.perplexity(HELDOUT)
    assert math.isfinite(ppl) and 1.0 < ppl
    name = "model.layers.0.mlp.up_proj"
    assert lm.module_for(name + ".weight", (128, 64)) == name
    assert lm.module_for(name + ".weight", (64, 128)) is None  # shape must agree
    x = lm.capture(TEXTS, [name])[name]
    assert x.shape == (sum(lm.ids(t).shape[1] for t in TEXTS), 64)
    # replacing a weight changes the output and is undone afterwards
    zero = {name: torch.zeros(128, 64)}
    assert lm.perplexity(HELDOUT, zero) != ppl
    assert lm.perplexity(HELDOUT) == ppl
    order = lm.forward_order(
        ["model.layers.1.mlp.down_proj", "model.layers.0.mlp.down_proj", name], TEXTS[0]
    )
    assert order == [name, "model.layers.0.mlp.down_proj", "model.layers.1.mlp.down_proj"]


@pytest.mark.parametrize("name", ["static", "ecsq", "tcq"])
def test_compression_runners_report_perplexity_on_a_causal_lm(
    causal_folder: Path, name: str
) -> None:
    """The model-level metric of every compression runner is perplexity on a causal LM."""
    st = run_runner(get_runner(name), ModelSource(causal_folder), {"matrices": "ffn"})
    validate_statement(st)
    m, functional = st["predicate"]["metrics"], st["predicate"]["functional"]
    assert functional["metric"].startswith("perplexity") and functional["matrices_applied"] == 6
    assert m["ppl_before"] == pytest.approx(CausalLM(causal_folder).perplexity(HELDOUT))
    assert m["ppl_after"] != m["ppl_before"] and math.isfinite(m["ppl_after"])
    assert m["ppl_ratio"] == pytest.approx(m["ppl_after"] / m["ppl_before"])


def test_hessian_on_causal_lm_folder(causal_folder: Path) -> None:
    assert get_runner("hessian") is RUNNER
    params = {"bits": 3, "group_size": 32}
    st = run_runner(get_runner("hessian"), ModelSource(causal_folder), params, repeat=2)
    validate_statement(st)
    json.dumps(st, allow_nan=False)
    pred = st["predicate"]
    m = pred["metrics"]
    assert pred["calibration"]["kind"] == "activations"
    assert pred["calibration"]["gaussian_matrices"] == []
    assert pred["functional"]["metric"] == "perplexity"
    assert pred["functional"]["matrices_applied"] == 6
    names = {s["name"] for s in st["subject"]}
    assert {"model.safetensors", "calibration-texts", "evaluation-texts"} <= names
    # 2 layers x (gate, up, down), in forward order
    assert m["n_matrices"] == 6
    assert [r["name"] for r in pred["rows"][:3]] == [
        f"model.layers.0.mlp.{p}_proj.weight" for p in ("gate", "up", "down")
    ]
    for key in ("ppl_before", "ppl_after_gptq", "ppl_after_rtn"):
        for suffix in ("", "_calib"):
            v = m[key + suffix]
            assert math.isfinite(v) and v > 1.0, (key + suffix, v)
    assert m["ppl_ratio"] == pytest.approx(m["ppl_after_gptq"] / m["ppl_before"])
    assert m["ppl_ratio_rtn"] == pytest.approx(m["ppl_after_rtn"] / m["ppl_before"])
    # quantization is applied and moves the perplexity. GPTQ vs RTN perplexity is NOT
    # compared here: an untrained random network's perplexity (~ vocabulary size) moves
    # up or down by chance under quantization (seen: 2-bit RTN *lowering* it by 16 %);
    # see the slow test on a trained model. GPTQ's own objective, the layer output error,
    # is checked per row below.
    assert m["ppl_after_rtn"] != m["ppl_before"]
    assert m["ppl_after_gptq"] != m["ppl_before"]
    # determinism: two fresh runs, identical metrics and reconstructions
    det = pred["determinism"]
    assert det["delta"] == 0 and det["digests_equal"] and m["determinism_delta"] == 0
    # bytes: 3-bit codes + fp16 scale and offset per 32 input columns
    for row in pred["rows"]:
        out_f, in_f = row["shape"]
        groups = -(-in_f // 32)
        assert row["bytes_codes"] == out_f * in_f * 3 // 8
        assert row["bytes_scales"] == row["bytes_zeros"] == out_f * groups * 2
        assert row["bytes_total"] == row["bytes_codes"] + 2 * row["bytes_scales"]
        assert row["ratio"] == pytest.approx(row["bytes_fp16"] / row["bytes_total"])
        assert row["calib"] == "activations" and row["calib_rows"] > 0
        assert row["layer_out_cos"] >= row["layer_out_cos_rtn"] - 1e-6
    assert m["bytes_total"] == sum(r["bytes_total"] for r in pred["rows"])
    assert m["bytes_fp16"] == 2 * m["n_params"]
    assert m["bits_per_weight"] == pytest.approx(3 + 32 / 32)
    assert m["ratio_fp16_effective"] == pytest.approx(m["bytes_fp16"] / m["bytes_total"])


def _train(folder: Path, steps: int = 100, lr: float = 3e-3) -> None:
    """Fit the tiny model to all built-in texts (full batch, AdamW) and save it in place."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(
        str(folder), local_files_only=True, dtype=torch.float32
    )
    enc = [tok(t)["input_ids"] for t in (*TEXTS, *HELDOUT)]
    width = max(len(e) for e in enc)
    ids = torch.full((len(enc), width), tok.eos_token_id)
    labels = torch.full((len(enc), width), -100)
    for i, e in enumerate(enc):  # right padding: causal attention never looks at it
        ids[i, : len(e)] = torch.tensor(e)
        labels[i, : len(e)] = torch.tensor(e)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    for _ in range(steps):
        loss = model(input_ids=ids, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.save_pretrained(folder, safe_serialization=True)


@pytest.mark.slow
def test_hessian_gptq_vs_rtn_perplexity_on_trained_causal_lm(tmp_path: Path) -> None:
    """On a model that fits the texts (ppl ~1.5), 3-bit GPTQ is no worse than RTN (+5 %)."""
    folder = make_causal_folder(tmp_path / "trained", init_range=0.02)
    _train(folder)
    st = run_runner(RUNNER, ModelSource(folder), {"bits": 3, "group_size": 32})
    validate_statement(st)
    m = st["predicate"]["metrics"]
    assert 1.0 < m["ppl_before"] < 3.0  # training worked: far below the vocabulary size
    assert m["ppl_after_rtn"] > m["ppl_before"]  # rounding hurts a model that fits its data
    assert m["ppl_after_gptq"] <= m["ppl_after_rtn"] * 1.05
    assert m["ppl_after_gptq_calib"] <= m["ppl_after_rtn_calib"] * 1.05
    assert m["layer_out_cos_min"] >= m["layer_out_cos_min_rtn"]
    assert m["determinism_delta"] == 0


def test_hessian_causal_lm_without_linear_ffn_falls_back(tmp_path: Path) -> None:
    """GPT-2 keeps its MLP in Conv1D (not nn.Linear): Gaussian inputs, no perplexity.

    Its config says GPT2LMHeadModel, which is not *ForCausalLM, so the folder is first seen
    as an unknown architecture; renamed, it reaches the causal path and its Conv1D matrices
    are reported as not Linear layers.
    """
    from transformers import GPT2Config, GPT2LMHeadModel

    tok, fast = _tokenizer()
    torch.manual_seed(0)
    config = GPT2Config(
        n_embd=32, n_layer=1, n_head=2, n_positions=64, vocab_size=tok.get_vocab_size()
    )
    GPT2LMHeadModel(config).save_pretrained(tmp_path, safe_serialization=True)
    fast.save_pretrained(tmp_path)
    st = run_runner(RUNNER, ModelSource(tmp_path), {"group_size": 32})
    validate_statement(st)
    assert "architecture not supported" in st["predicate"]["calibration"]["reason"]
    cfg_path = tmp_path / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["architectures"] = ["GPT2ForCausalLM"]  # loading goes by model_type, not this name
    cfg_path.write_text(json.dumps(cfg))
    st = run_runner(RUNNER, ModelSource(tmp_path), {"group_size": 32})
    validate_statement(st)
    pred = st["predicate"]
    assert pred["calibration"]["kind"] == "gaussian"
    assert "not Linear layers" in pred["calibration"]["reason"]
    assert pred["functional"]["metric"] is None
    assert "ppl_before" not in pred["metrics"]
    assert pred["metrics"]["n_matrices"] == 2  # c_fc and c_proj of the one MLP


def test_schema_requires_perplexity_metrics(causal_folder: Path) -> None:
    st = run_runner(RUNNER, ModelSource(causal_folder), {"bits": 4, "group_size": 64})
    validate_statement(st)
    del st["predicate"]["metrics"]["ppl_after_rtn"]
    with pytest.raises(ValueError, match="ppl_after_rtn"):
        validate_statement(st)


def test_causal_lm_without_transformers_says_so(
    causal_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "transformers" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    st = run_runner(RUNNER, ModelSource(causal_folder), {"group_size": 64})
    validate_statement(st)
    pred = st["predicate"]
    assert pred["calibration"]["kind"] == "gaussian"
    assert "transformers" in pred["functional"]["reason"]
    assert "ppl_before" not in pred["metrics"]
