"""The model-level metric of a compression, measured on the model rebuilt from its output.

For a BERT-style encoder folder (config.json + tokenizer.json beside the weights, e.g. the
default MiniLM-L6): the cosine between sentence embeddings (mean pooling + L2) of the
original and of the reconstructed model on the held-out texts (`runners.texts.HELDOUT`,
never used for calibration), min and mean over the texts. For a causal LM folder
(`*ForCausalLM`, run through `runners.causal`): perplexity on the held-out texts before and
after. For a bare .safetensors file no model can be run: no metric, and the reason is said.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any

import torch

from runners.minilm import BertEncoder, folder_kind, model_folder
from runners.model import ModelSource
from runners.texts import HELDOUT, HELDOUT_LICENCE, TEXTS
from runners.texts import subject as texts_subject


class FunctionalProbe:
    """Runs the original model once and then any reconstruction of its selected matrices."""

    def __init__(self, model: ModelSource):
        """Find out what can be run for `model` and compute the reference outputs."""
        self.kind = "bare"
        self.reason = "no config.json/tokenizer.json beside the weights: the model cannot run"
        self._encoder: BertEncoder | None = None
        self._lm: Any = None
        self._ref: torch.Tensor | None = None
        self._ppl_before: float | None = None
        self._ref_calib: torch.Tensor | None = None
        folder = model_folder(model.paths[0]) if model.paths else None
        kind = folder_kind(folder) if folder is not None else "bare"
        if folder is not None and kind == "bert":
            self._encoder = BertEncoder(folder, files=model.paths)
            self._ref = self._encoder.embed(HELDOUT)
            self.kind, self.reason = "bert", ""
        elif folder is not None and kind == "causal-lm":
            if importlib.util.find_spec("transformers") is None:
                self.reason = "causal LM folder, but `transformers` is not installed"
            else:
                from runners.causal import CausalLM

                self._lm = CausalLM(folder)
                self._ppl_before = self._lm.perplexity(HELDOUT)
                self.kind, self.reason = "causal-lm", ""
        elif folder is not None:
            self.reason = f"model architecture {kind!r} cannot be run here"

    @property
    def available(self) -> bool:
        """True when a model-level metric is measured."""
        return self.kind in ("bert", "causal-lm")

    def _names(self, recon: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """File-key reconstructions mapped to the running model's weight names."""
        out: dict[str, torch.Tensor] = {}
        if self._encoder is not None:
            known = set(self._encoder.weights)
            for key, w in recon.items():
                name = key.removeprefix("bert.")
                if name in known and self._encoder.weights[name].shape == w.shape:
                    out[name] = w.to(torch.float32)
        elif self._lm is not None:
            for key, w in recon.items():
                mod = self._lm.module_for(key, tuple(w.shape))
                if mod is not None:
                    out[mod] = w.to(torch.float32)
        return out

    def evaluate(self, recon: Mapping[str, torch.Tensor]) -> dict[str, float]:
        """Model-level metrics with the matrices in `recon` (file key -> tensor) replaced."""
        over = self._names(recon)
        if self._encoder is not None and self._ref is not None:
            got = self._encoder.embed(HELDOUT, overrides=over)
            cos = torch.nn.functional.cosine_similarity(
                self._ref.to(torch.float64), got.to(torch.float64), dim=1
            )
            return {
                "embedding_cos_min": float(cos.min()),
                "embedding_cos_mean": float(cos.mean()),
            }
        if self._lm is not None and self._ppl_before is not None:
            after = self._lm.perplexity(HELDOUT, over)
            return {
                "ppl_before": self._ppl_before,
                "ppl_after": after,
                "ppl_ratio": after / self._ppl_before,
            }
        return {}

    def calibration_cos(self, recon: Mapping[str, torch.Tensor]) -> dict[str, float]:
        """In-sample figure for a search: sentence-embedding cosine on the *calibration* texts
        (`runners.texts.TEXTS`, the ones calibration activations come from), min and mean.

        Only a BERT encoder has it; the held-out `evaluate` stays the reported metric.
        """
        if self._encoder is None:
            raise ValueError("no sentence-embedding model to evaluate")
        if self._ref_calib is None:
            self._ref_calib = self._encoder.embed(TEXTS).to(torch.float64)
        got = self._encoder.embed(TEXTS, overrides=self._names(recon))
        cos = torch.nn.functional.cosine_similarity(self._ref_calib, got.to(torch.float64), dim=1)
        return {
            "embedding_cos_min_calib": float(cos.min()),
            "embedding_cos_mean_calib": float(cos.mean()),
        }

    def describe(self, applied: int) -> dict[str, Any]:
        """The statement's `functional` block."""
        if self.kind == "bert":
            metric = "sentence-embedding cosine (mean pooling + L2), reconstructed vs original"
        elif self.kind == "causal-lm":
            metric = "perplexity, exp(mean next-token NLL), each text alone"
        else:
            return {"metric": None, "reason": self.reason}
        return {
            "metric": metric,
            "texts": f"{len(HELDOUT)} built-in held-out texts (evaluation-texts, "
            f"{HELDOUT_LICENCE}), none used for calibration",
            "matrices_applied": applied,
            "untouched": "every other tensor as in the original file",
        }

    def subjects(self) -> list[dict[str, Any]]:
        """The held-out texts as an in-toto subject (when they were used)."""
        return [texts_subject(HELDOUT, "evaluation-texts")] if self.available else []


def measure_functional(
    model: ModelSource, recon: Mapping[str, torch.Tensor]
) -> tuple[dict[str, float], dict[str, Any], list[dict[str, Any]]]:
    """One-shot helper: metrics, the `functional` block and subjects for `recon`."""
    probe = FunctionalProbe(model)
    metrics = probe.evaluate(recon)
    return metrics, probe.describe(len(probe._names(recon))), probe.subjects()


def add_functional(
    model: ModelSource,
    recon: Mapping[str, torch.Tensor],
    metrics: dict[str, Any],
    extra: dict[str, Any],
) -> None:
    """Put the model-level metric of `recon` into `metrics`, its block and subjects into
    `extra` (the hook every compression runner calls once its reconstructions are built)."""
    got, block, subjects = measure_functional(model, recon)
    metrics.update(got)
    extra["functional"] = block
    extra["subjects"] = list(extra.get("subjects", [])) + subjects
