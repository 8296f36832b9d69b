"""The model-level metric on the rebuilt model, and the held-out texts it is measured on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from runners.ecsq import RUNNER as ECSQ
from runners.functional import FunctionalProbe
from runners.model import ModelSource
from runners.statement import run_runner, validate_statement
from runners.texts import HELDOUT, HELDOUT_LICENCE, TEXTS

HIDDEN, LAYERS, INTER = 16, 2, 32


def make_tiny_bert(folder: Path, seed: int = 0) -> Path:
    """A real (tiny, random) BERT folder: config.json, tokenizer.json, model.safetensors."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordLevel

    folder.mkdir(parents=True, exist_ok=True)
    words = sorted({w for t in HELDOUT + TEXTS for w in t.lower().replace(".", " ").split()})
    vocab = {"[PAD]": 0, "[UNK]": 1, **{w: i + 2 for i, w in enumerate(words[:400])}}
    tok = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(folder / "tokenizer.json"))
    cfg = {
        "model_type": "bert",
        "architectures": ["BertModel"],
        "hidden_size": HIDDEN,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": 2,
        "intermediate_size": INTER,
        "max_position_embeddings": 64,
        "type_vocab_size": 2,
        "vocab_size": len(vocab),
    }
    (folder / "config.json").write_text(json.dumps(cfg))
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape: int, s: float = 0.2) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * s

    t = {
        "embeddings.word_embeddings.weight": rnd(len(vocab), HIDDEN, s=1.0),
        "embeddings.position_embeddings.weight": rnd(64, HIDDEN),
        "embeddings.token_type_embeddings.weight": rnd(2, HIDDEN),
        "embeddings.LayerNorm.weight": torch.ones(HIDDEN),
        "embeddings.LayerNorm.bias": torch.zeros(HIDDEN),
    }
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        for name, (o, n) in {
            "attention.self.query": (HIDDEN, HIDDEN),
            "attention.self.key": (HIDDEN, HIDDEN),
            "attention.self.value": (HIDDEN, HIDDEN),
            "attention.output.dense": (HIDDEN, HIDDEN),
            "intermediate.dense": (INTER, HIDDEN),
            "output.dense": (HIDDEN, INTER),
        }.items():
            t[p + name + ".weight"] = rnd(o, n, s=0.3)
            t[p + name + ".bias"] = rnd(o, s=0.02)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            t[p + ln + ".weight"] = torch.ones(HIDDEN)
            t[p + ln + ".bias"] = torch.zeros(HIDDEN)
    save_file(t, str(folder / "model.safetensors"))
    return folder


@pytest.fixture
def tiny_bert(tmp_path: Path) -> Path:
    return make_tiny_bert(tmp_path / "bert")


def test_heldout_texts_are_many_distinct_and_apart_from_calibration() -> None:
    assert len(HELDOUT) >= 200
    assert len(set(HELDOUT)) == len(HELDOUT)
    assert not set(HELDOUT) & set(TEXTS)
    assert "licence" in HELDOUT_LICENCE or "MIT" in HELDOUT_LICENCE


def test_probe_sees_what_was_replaced(tiny_bert: Path) -> None:
    model = ModelSource(tiny_bert)
    probe = FunctionalProbe(model)
    assert probe.available and probe.kind == "bert"
    same = {i.name: model.load(i) for i in model.matrix_infos()}
    ident = probe.evaluate(same)
    assert ident["embedding_cos_min"] == pytest.approx(1.0, abs=1e-5)
    g = torch.Generator().manual_seed(1)
    noisy = {k: v + 0.2 * torch.randn(v.shape, generator=g) for k, v in same.items()}
    got = probe.evaluate(noisy)
    assert got["embedding_cos_min"] < 0.999
    assert got["embedding_cos_min"] <= got["embedding_cos_mean"] < 1.0
    assert probe.describe(len(same))["matrices_applied"] == len(same)


def test_bare_file_has_no_model_metric(tiny_model: Path) -> None:
    probe = FunctionalProbe(ModelSource(tiny_model))
    assert not probe.available and probe.evaluate({}) == {} and probe.reason


def test_runner_reports_the_model_level_metric(tiny_bert: Path) -> None:
    st = run_runner(ECSQ, ModelSource(tiny_bert), {"target_cos": 0.9})
    validate_statement(st)
    m = st["predicate"]["metrics"]
    assert 0.0 < m["embedding_cos_min"] < 1.0
    assert m["embedding_cos_min"] <= m["embedding_cos_mean"]
    names = {s["name"] for s in st["subject"]}
    assert "evaluation-texts" in names
    assert st["predicate"]["functional"]["matrices_applied"] == m["n_matrices"]
