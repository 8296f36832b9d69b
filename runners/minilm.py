"""Pure-torch BERT encoder (MiniLM-L6 and kin) read from a model folder's own files.

Weights come from the folder's safetensors via `safe_open`, the tokenizer from its
`tokenizer.json` via `tokenizers`. The sentence embedding is mean pooling over real tokens
followed by L2 normalisation (the sentence-transformers recipe for all-MiniLM-L6-v2).
`forward` can capture the input activations of every linear layer and can run with some
weights replaced (e.g. by their compressed reconstructions).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812

Capture = Callable[[str, torch.Tensor], None]

_ENCODER_TYPES = {"bert"}


@dataclass(frozen=True)
class BertConfig:
    """The subset of a Hugging Face BERT config.json that the forward pass needs."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    layer_norm_eps: float
    max_position_embeddings: int
    type_vocab_size: int
    hidden_act: str = "gelu"

    @classmethod
    def from_file(cls, path: Path) -> BertConfig:
        """Read a config.json."""
        cfg = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(
            hidden_size=int(cfg["hidden_size"]),
            num_hidden_layers=int(cfg["num_hidden_layers"]),
            num_attention_heads=int(cfg["num_attention_heads"]),
            intermediate_size=int(cfg["intermediate_size"]),
            layer_norm_eps=float(cfg.get("layer_norm_eps", 1e-12)),
            max_position_embeddings=int(cfg.get("max_position_embeddings", 512)),
            type_vocab_size=int(cfg.get("type_vocab_size", 2)),
            hidden_act=str(cfg.get("hidden_act", "gelu")),
        )


def model_folder(path: Path | str) -> Path | None:
    """The folder holding config.json + tokenizer.json for `path` (file or folder), else None."""
    p = Path(path)
    folder = p if p.is_dir() else p.parent
    if (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file():
        return folder
    return None


def folder_kind(folder: Path) -> str:
    """'bert' for a BERT-style encoder, 'causal-lm' for *ForCausalLM, else 'unknown'."""
    cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    archs = cfg.get("architectures") or []
    if any(str(a).endswith("ForCausalLM") for a in archs):
        return "causal-lm"
    if cfg.get("model_type") in _ENCODER_TYPES:
        return "bert"
    return "unknown"


def _weight_files(folder: Path) -> list[Path]:
    """The safetensors files of a model folder (single file or shards)."""
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{folder}: no .safetensors file")
    return files


def _gelu(x: torch.Tensor, act: str) -> torch.Tensor:
    """The activation named by config.hidden_act."""
    if act == "gelu":
        return F.gelu(x)
    if act in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
        return F.gelu(x, approximate="tanh")
    if act == "relu":
        return F.relu(x)
    raise ValueError(f"unsupported hidden_act {act!r}")


class BertEncoder:
    """A BERT encoder forward pass in plain torch, float32, on CPU."""

    def __init__(
        self,
        folder: Path | str,
        *,
        files: Sequence[Path] | None = None,
        max_seq_length: int | None = None,
    ) -> None:
        """Load config, tokenizer and all weights (of `files`, default the folder's)."""
        from safetensors import safe_open
        from tokenizers import Tokenizer

        self.folder = Path(folder)
        self.config = BertConfig.from_file(self.folder / "config.json")
        self.weights: dict[str, torch.Tensor] = {}
        self.file_keys: dict[str, str] = {}
        self.files = [Path(f) for f in files] if files else _weight_files(self.folder)
        for f in self.files:
            with safe_open(str(f), framework="pt") as st:
                for key in st.keys():
                    name = key.removeprefix("bert.")
                    self.weights[name] = st.get_tensor(key).to(torch.float32)
                    self.file_keys[name] = key
        if max_seq_length is None:
            sb = self.folder / "sentence_bert_config.json"
            if sb.is_file():
                max_seq_length = int(json.loads(sb.read_text())["max_seq_length"])
            else:
                max_seq_length = self.config.max_position_embeddings
        self.max_seq_length = min(max_seq_length, self.config.max_position_embeddings)
        tok = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        tok.enable_truncation(max_length=self.max_seq_length)
        pad = tok.padding or {}
        tok.enable_padding(
            pad_id=int(pad.get("pad_id", 0)), pad_token=pad.get("pad_token", "[PAD]")
        )
        self.tokenizer = tok

    # -- names -----------------------------------------------------------------------------

    def linear_names(self) -> list[str]:
        """Weight names of every linear layer in the encoder, in forward order."""
        names = []
        for i in range(self.config.num_hidden_layers):
            p = f"encoder.layer.{i}."
            names += [
                p + "attention.self.query.weight",
                p + "attention.self.key.weight",
                p + "attention.self.value.weight",
                p + "attention.output.dense.weight",
                p + "intermediate.dense.weight",
                p + "output.dense.weight",
            ]
        return names

    def ffn_names(self) -> list[str]:
        """Weight names of the FFN matrices (intermediate and output dense), in forward order."""
        return [
            n
            for n in self.linear_names()
            if n.endswith(("intermediate.dense.weight", "output.dense.weight"))
            and ".attention." not in n
        ]

    # -- forward ---------------------------------------------------------------------------

    def encode(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Tokenize a batch: input_ids, attention_mask, token_type_ids as int64 tensors."""
        enc = self.tokenizer.encode_batch(list(texts))
        return {
            "input_ids": torch.tensor([e.ids for e in enc], dtype=torch.long),
            "attention_mask": torch.tensor([e.attention_mask for e in enc], dtype=torch.long),
            "token_type_ids": torch.tensor([e.type_ids for e in enc], dtype=torch.long),
        }

    def forward(
        self,
        batch: Mapping[str, torch.Tensor],
        *,
        overrides: Mapping[str, torch.Tensor] | None = None,
        capture: Capture | None = None,
        capture_names: Iterable[str] | None = None,
    ) -> torch.Tensor:
        """Last hidden state [batch, seq, hidden]; `overrides` replace weights by name.

        `capture(name, X)` receives, for each linear weight in `capture_names` (all if None),
        its input activations X over real (non-padding) tokens, shape [tokens, in_features].
        """
        cfg = self.config
        w = self.weights if not overrides else {**self.weights, **overrides}
        wanted = None if capture_names is None else set(capture_names)
        ids, mask = batch["input_ids"], batch["attention_mask"]
        types = batch.get("token_type_ids", torch.zeros_like(ids))
        keep = mask.bool()

        def linear(x: torch.Tensor, prefix: str) -> torch.Tensor:
            name = prefix + ".weight"
            if capture is not None and (wanted is None or name in wanted):
                capture(name, x[keep])
            return F.linear(x, w[name], w.get(prefix + ".bias"))

        def norm(x: torch.Tensor, prefix: str) -> torch.Tensor:
            return F.layer_norm(
                x,
                (cfg.hidden_size,),
                w[prefix + ".weight"],
                w[prefix + ".bias"],
                cfg.layer_norm_eps,
            )

        seq = ids.shape[1]
        pos = torch.arange(seq, dtype=torch.long)
        h = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][pos][None]
            + w["embeddings.token_type_embeddings.weight"][types]
        )
        h = norm(h, "embeddings.LayerNorm")
        nh = cfg.num_attention_heads
        hd = cfg.hidden_size // nh
        neg = (1.0 - mask[:, None, None, :].to(h.dtype)) * torch.finfo(h.dtype).min
        bsz = ids.shape[0]
        for i in range(cfg.num_hidden_layers):
            p = f"encoder.layer.{i}."

            def heads(t: torch.Tensor) -> torch.Tensor:
                return t.view(bsz, seq, nh, hd).transpose(1, 2)

            q = heads(linear(h, p + "attention.self.query"))
            k = heads(linear(h, p + "attention.self.key"))
            v = heads(linear(h, p + "attention.self.value"))
            scores = q @ k.transpose(-1, -2) / math.sqrt(hd) + neg
            ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(bsz, seq, cfg.hidden_size)
            h = norm(
                linear(ctx, p + "attention.output.dense") + h, p + "attention.output.LayerNorm"
            )
            inter = _gelu(linear(h, p + "intermediate.dense"), cfg.hidden_act)
            h = norm(linear(inter, p + "output.dense") + h, p + "output.LayerNorm")
        return h

    @torch.no_grad()
    def embed(
        self,
        texts: Sequence[str],
        *,
        overrides: Mapping[str, torch.Tensor] | None = None,
        capture: Capture | None = None,
        capture_names: Iterable[str] | None = None,
    ) -> torch.Tensor:
        """Sentence embeddings [n, hidden]: mean pooling over real tokens, then L2 norm."""
        batch = self.encode(texts)
        h = self.forward(batch, overrides=overrides, capture=capture, capture_names=capture_names)
        m = batch["attention_mask"].unsqueeze(-1).to(h.dtype)
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, p=2, dim=1)

    @torch.no_grad()
    def gram(
        self,
        texts: Sequence[str],
        names: Iterable[str],
        *,
        overrides: Mapping[str, torch.Tensor] | None = None,
    ) -> tuple[dict[str, torch.Tensor], int]:
        """XᵀX (float64) of the inputs of each named linear layer, and the token count."""
        grams: dict[str, torch.Tensor] = {}
        count = 0

        def cap(name: str, x: torch.Tensor) -> None:
            nonlocal count
            x64 = x.to(torch.float64)
            g = x64.T @ x64
            grams[name] = grams[name] + g if name in grams else g
            count = x.shape[0]

        self.embed(texts, overrides=overrides, capture=cap, capture_names=list(names))
        return grams, count


def capture_linear_inputs(model: Any, samples: int, seed: int) -> dict[str, torch.Tensor] | None:
    """Real inputs X per linear weight (file key names) from the built-in texts, or None.

    Hook for `runners.measure.Calibration`: works when the model's folder is a BERT-style
    encoder with config.json and tokenizer.json; at most `samples` token rows per matrix,
    picked by a seeded permutation when there are more.
    """
    from runners.texts import TEXTS

    paths = list(getattr(model, "paths", []) or [])
    folder = model_folder(paths[0]) if paths else None
    if folder is None or folder_kind(folder) != "bert":
        return None
    enc = BertEncoder(folder, files=paths)
    xs: dict[str, torch.Tensor] = {}
    enc.embed(TEXTS, capture=lambda n, x: xs.__setitem__(enc.file_keys.get(n, n), x.clone()))
    gen = torch.Generator().manual_seed(seed)
    for name, x in xs.items():
        if x.shape[0] > samples:
            idx = torch.randperm(x.shape[0], generator=gen)[:samples].sort().values
            xs[name] = x[idx]
    return xs
