"""compare on real compressed checkpoints of the default model, checked independently."""

from __future__ import annotations

import base64
import hashlib
import json
import math
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from compressed_models import (
    copy_original,
    default_folder,
    gptq_tensors,
    load_all,
    write_compressed_tensors,
    write_gguf,
    write_gptq,
)
from safetensors.torch import save_file

from evledger.cli import cli, main
from runners.measure import cosine
from runners.model import ModelSource, default_model_path
from runners.registry import get_runner
from runners.statement import run_runner, validate_statement


def _run(compressed: Path, model: Path | None = None, **params: object) -> dict:
    """The compare statement (validated) for `model` (default model) vs `compressed`."""
    given = {"compressed": str(compressed), "functional": "false", **params}
    st = run_runner(get_runner("compare"), ModelSource(model), given)
    validate_statement(st)
    return st


def _header_sizes(path: Path) -> dict[str, int]:
    """Tensor byte lengths from the raw safetensors header."""
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    return {
        k: v["data_offsets"][1] - v["data_offsets"][0]
        for k, v in header.items()
        if k != "__metadata__"
    }


@pytest.fixture(scope="module")
def gptq4(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    """A 4-bit act-order GPTQ-layout folder of the default model and the expected Ŵ."""
    return write_gptq(tmp_path_factory.mktemp("gptq") / "g4", 4, 128, act_order=True)


def test_compare_gptq_bytes_ratio_and_cosines_match_an_independent_computation(
    gptq4: tuple[Path, dict[str, torch.Tensor]],
) -> None:
    """Bytes from the header, ratio from fp16 bytes, per-matrix cos from the expected Ŵ."""
    folder, expected = gptq4
    st = _run(folder)
    pred = st["predicate"]
    m = pred["metrics"]
    sizes = _header_sizes(folder / "model.safetensors")
    original = load_all(default_model_path())
    parts = ("qweight", "qzeros", "scales", "g_idx")
    stored = sum(sizes[n.removesuffix("weight") + p] for n in expected for p in parts)
    fp16 = sum(2 * original[n].numel() for n in expected)
    assert m["bytes_total"] == stored and m["bytes_fp16"] == fp16
    assert m["ratio_fp16_effective"] == pytest.approx(fp16 / stored)
    size = (folder / "model.safetensors").stat().st_size
    model_fp16 = sum(2 * t.numel() for t in original.values() if t.is_floating_point())
    assert m["bytes_files"] == size and m["ratio_model"] == pytest.approx(model_fp16 / size)
    cos = {n: cosine(original[n].float(), w) for n, w in expected.items()}
    rows = {r["name"]: r for r in pred["rows"]}
    for n, c in cos.items():
        assert rows[n]["cos"] == pytest.approx(c, abs=1e-9)
        assert rows[n]["counted"] is True
        assert set(rows[n]["bytes_by_part"]) == {
            n.removesuffix("weight") + p for p in ("qweight", "qzeros", "scales", "g_idx")
        }
    assert m["cos_min"] == pytest.approx(min(cos.values()), abs=1e-9)
    assert m["cos_mean"] == pytest.approx(sum(cos.values()) / len(cos), abs=1e-9)
    assert 0.9 < m["layer_out_cos_min"] <= m["layer_out_cos_mean"] <= 1
    assert pred["compressed"]["format"] == "gptq" and pred["compressed"]["desc_act"] is True
    assert pred["tensors"]["not_compared"] == [
        {"name": "embeddings.position_ids", "reason": "integer tensor (I64)"}
    ]
    names = {s["name"]: s["digest"]["sha256"] for s in st["subject"]}
    cfg = folder / "config.json"
    assert names["compressed/config.json"] == hashlib.sha256(cfg.read_bytes()).hexdigest()
    assert "compressed/model.safetensors" in names and "model.safetensors" in names
    assert pred["determinism"]["digests_equal"] is True


@pytest.mark.slow
def test_compare_gguf_lists_tensors_on_one_side_only(tmp_path: Path) -> None:
    """The BERT GGUF has no pooler: the original's pooler tensors are listed, not skipped."""
    st = _run(write_gguf(tmp_path / "m.gguf", "Q4_0"))
    pred = st["predicate"]
    only = {"pooler.dense.weight", "pooler.dense.bias", "embeddings.position_ids"}
    assert set(pred["tensors"]["only_original"]) == only
    assert pred["metrics"]["n_original_only"] == 3
    assert pred["compressed"]["tensor_types"]["Q4_0"] == 36
    assert pred["metrics"]["ratio_fp16_effective"] == pytest.approx(2 * 32 / 18)


def test_compare_plain_marks_claimed_bytes(tmp_path: Path, tiny_model: Path) -> None:
    """format=plain: no measured ratio, the claimed one is named as such."""
    tensors = load_all(tiny_model)
    deq = {k: v.half().float() for k, v in tensors.items()}
    save_file(deq, str(tmp_path / "deq.safetensors"))
    st = _run(tmp_path / "deq.safetensors", model=tiny_model, format="plain", claimed_bytes=1_000)
    m = st["predicate"]["metrics"]
    assert "ratio_fp16_effective" not in m and "rate_distortion" not in st["predicate"]
    assert m["bytes_claimed"] == 1_000
    assert m["ratio_model_claimed"] == pytest.approx(m["bytes_fp16_model"] / 1_000)
    assert st["predicate"]["calibration"]["kind"] == "gaussian"
    assert st["predicate"]["coverage"]["bytes_source"] == "claimed"
    assert m["cos_min"] > 0.99999


def _tiny_gptq(folder: Path, tiny_model: Path) -> Path:
    """A 4-bit GPTQ-layout folder of the tiny model (group 32)."""
    folder.mkdir()
    out: dict[str, torch.Tensor] = {}
    for name, t in load_all(tiny_model).items():
        if t.dim() == 2 and "embed" not in name:
            parts, _ = gptq_tensors(t, 4, 32, act_order=False)
            out |= {name.removesuffix("weight") + k: v for k, v in parts.items()}
        else:
            out[name] = t.half()
    save_file(out, str(folder / "model.safetensors"))
    cfg = {"quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 32}}
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


def test_compare_records_model_signing_root_digest(tmp_path: Path, tiny_model: Path) -> None:
    """An OpenSSF model-signing bundle in the folder: root digest subject, signature unchecked."""
    folder = _tiny_gptq(tmp_path / "signed", tiny_model)
    digest = hashlib.sha256((folder / "config.json").read_bytes()).hexdigest()
    root = hashlib.sha256(b"root").hexdigest()
    payload = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "signed", "digest": {"sha256": root}}],
        "predicateType": "https://model_signing/signature/v1.0",
        "predicate": {
            "resources": [{"name": "config.json", "algorithm": "sha256", "digest": digest}]
        },
    }
    bundle = {"dsseEnvelope": {"payload": base64.b64encode(json.dumps(payload).encode()).decode()}}
    (folder / "model.sig").write_text(json.dumps(bundle))
    st = _run(folder, model=tiny_model)
    names = {s["name"]: s["digest"]["sha256"] for s in st["subject"]}
    assert names["compressed/model-signing-root"] == root
    assert "compressed/model.sig" in names
    sig = st["predicate"]["compressed"]["signing"][0]
    assert sig["signature_checked"] is False and sig["resources_matching"] == ["config.json"]


@pytest.mark.parametrize("kind", ["ct", "gptq", "gguf"])
def test_static_refuses_compressed_checkpoints(
    tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """static on a compressed checkpoint: exit 2, one line pointing to `evledger run compare`."""
    if kind == "ct":
        path = write_compressed_tensors(tmp_path / "ct", "W4A16", "pack-quantized")
    elif kind == "gptq":
        path = write_gptq(tmp_path / "g", 4, 128)[0] / "model.safetensors"
    else:
        path = write_gguf(tmp_path / "m.gguf", "Q8_0")
    with pytest.raises(SystemExit) as exc:
        main(["run", "static", "--model", str(path), "--dry-run"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "evledger run compare --model ORIGINAL --param compressed=" in err[0]


@pytest.mark.slow
def test_compare_cli_compressed_tensors_embedding_cosine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end through the CLI into a real ledger: W4A16 compressed-tensors vs MiniLM,
    with the held-out sentence-embedding cosine."""
    from ledger.api import init_ledger, open_ledger

    monkeypatch.setenv("EVLEDGER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("EVLEDGER_KEY", raising=False)
    init_ledger(tmp_path / "led", key_name="alice")
    original = copy_original(tmp_path / "original")
    ct = write_compressed_tensors(tmp_path / "ct", "W4A16", "pack-quantized")
    args = ["--ledger", str(tmp_path / "led"), "run", "compare", "--model", str(original)]
    res = CliRunner().invoke(cli, [*args, "--param", f"compressed={ct}", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    m = out["metrics"]
    assert 0.5 < m["embedding_cos_min"] <= m["embedding_cos_mean"] < 1.0
    assert 3.5 < m["ratio_fp16_effective"] < 4.0  # 4-bit codes + fp16 scales per 128
    entry = list(open_ledger(tmp_path / "led").entries())[-1]
    assert entry.predicate_type == "https://evledger.dev/predicates/compare/v1"
    assert default_folder() != original
    assert not math.isnan(m["layer_out_cos_min"])


def test_compare_needs_a_compressed_path(capsys: pytest.CaptureFixture[str]) -> None:
    """No compressed=: exit 2, one line."""
    with pytest.raises(SystemExit) as exc:
        main(["run", "compare", "--dry-run"])
    assert exc.value.code == 2
    assert "compressed=PATH" in capsys.readouterr().err


@pytest.mark.slow
def test_compare_cli_gguf_into_a_ledger_with_embedding_cosine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end through the CLI into a real ledger: a Q8_0 GGUF of MiniLM vs the original,
    with the held-out sentence-embedding cosine (near 1 for 8-bit)."""
    from ledger.api import init_ledger, open_ledger

    monkeypatch.setenv("EVLEDGER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("EVLEDGER_KEY", raising=False)
    init_ledger(tmp_path / "led", key_name="alice")
    original = copy_original(tmp_path / "original")
    gg = write_gguf(tmp_path / "m.gguf", "Q8_0")
    args = ["--ledger", str(tmp_path / "led"), "run", "compare", "--model", str(original)]
    res = CliRunner().invoke(cli, [*args, "--param", f"compressed={gg}", "--json"])
    assert res.exit_code == 0, res.output
    m = json.loads(res.output)["metrics"]
    assert 0.99 < m["embedding_cos_min"] <= m["embedding_cos_mean"] <= 1.0
    assert m["ratio_fp16_effective"] == pytest.approx(64 / 34)
    assert m["cos_min"] > 0.999 and m["layer_out_cos_min"] > 0.999
    entry = list(open_ledger(tmp_path / "led").entries())[-1]
    assert entry.predicate_type == "https://evledger.dev/predicates/compare/v1"


def test_compare_cli_appends_a_tiny_gptq_comparison(
    tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`evledger run compare --model ORIGINAL --param compressed=PATH` appends a verified entry."""
    from ledger.api import init_ledger, open_ledger

    monkeypatch.setenv("EVLEDGER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("EVLEDGER_KEY", raising=False)
    init_ledger(tmp_path / "led", key_name="alice")
    folder = _tiny_gptq(tmp_path / "g", tiny_model)
    args = ["--ledger", str(tmp_path / "led"), "run", "compare", "--model", str(tiny_model)]
    res = CliRunner().invoke(cli, [*args, "--param", f"compressed={folder}", "--json"])
    assert res.exit_code == 0, res.output
    m = json.loads(res.output)["metrics"]
    assert m["n_matrices"] == 4 and m["cos_min"] > 0.99
    led = open_ledger(tmp_path / "led")
    entry = list(led.entries())[-1]
    assert entry.predicate_type == "https://evledger.dev/predicates/compare/v1"
    res = CliRunner().invoke(cli, ["--ledger", str(tmp_path / "led"), "verify"])
    assert res.exit_code == 0, res.output
