"""A causal LM folder run through `transformers`: linear-layer inputs and perplexity.

The model and its tokenizer come from the folder's own files only (`local_files_only`,
HF_HUB_OFFLINE set in-process: no network, ever), in float32. Each text is run alone
(batch of one: no padding, no attention-mask subtleties). The inputs X of selected
`torch.nn.Linear` layers are captured with forward pre-hooks; perplexity is
exp(mean token NLL) over all predicted tokens of a text set (every token after the first
of each text, as the tokenizer produces them); weights can be replaced for a run.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

Capture = Callable[[str, torch.Tensor], None]


def _offline() -> None:
    """No hub access from this process (read at import time by huggingface_hub)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


class _Stop(Exception):  # noqa: N818 - control flow, not an error
    """Raised by a capture hook to end a forward pass once the wanted inputs are taken."""


class CausalLM:
    """A `*ForCausalLM` folder: tokenizer, float32 model, linear inputs and perplexity."""

    def __init__(self, folder: Path | str):
        """Load model and tokenizer from `folder` (local files only)."""
        _offline()
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        self.folder = Path(folder)
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # no "Loading weights" bar on the runner's stderr
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(self.folder), local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(
                str(self.folder), local_files_only=True, dtype=torch.float32
            )
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        self.model = model.float().eval()
        self.linears: dict[str, torch.nn.Linear] = {
            n: m for n, m in self.model.named_modules() if isinstance(m, torch.nn.Linear)
        }
        self._ids: dict[str, torch.Tensor] = {}

    # ------------------------------------------------------------------ names

    def module_for(self, file_key: str, shape: Sequence[int]) -> str | None:
        """The Linear module whose weight is the file tensor `file_key` of `shape`, if any.

        Exact name first, then one unique suffix match either way (checkpoints sometimes
        drop or add the outer prefix, e.g. `model.`); the shape must agree.
        """
        base = file_key.removesuffix(".weight")
        if base == file_key:
            return None
        if base in self.linears:
            cands = [base]
        else:
            cands = [n for n in self.linears if n.endswith("." + base) or base.endswith("." + n)]
        if len(cands) != 1:
            return None
        name = cands[0]
        return name if tuple(self.linears[name].weight.shape) == tuple(shape) else None

    # ------------------------------------------------------------------ forward

    def ids(self, text: str) -> torch.Tensor:
        """Token ids [1, n] of one text (cached)."""
        if text not in self._ids:
            enc = self.tokenizer(text, return_tensors="pt")
            self._ids[text] = enc["input_ids"].to(torch.long)
        return self._ids[text]

    @contextmanager
    def replaced(self, overrides: Mapping[str, torch.Tensor] | None) -> Iterator[None]:
        """Run with some Linear weights replaced (module name -> tensor); restored after."""
        saved: dict[str, torch.Tensor] = {}
        try:
            for name, w in (overrides or {}).items():
                mod = self.linears[name]
                saved[name] = mod.weight.data
                mod.weight.data = w.to(mod.weight.dtype).reshape(mod.weight.shape)
            yield
        finally:
            for name, w in saved.items():
                self.linears[name].weight.data = w

    @torch.no_grad()
    def capture(
        self,
        texts: Sequence[str],
        names: Sequence[str],
        overrides: Mapping[str, torch.Tensor] | None = None,
        stop_after: str | None = None,
        strict: bool = True,
    ) -> dict[str, torch.Tensor]:
        """Inputs X [tokens, in_features] of Linear layers `names` over `texts`.

        With `stop_after`, each forward pass ends as soon as that layer's input is taken
        (the rest of the network is not run). A layer no text reaches (e.g. an unrouted
        expert) raises RuntimeError, or with `strict=False` is left out of the result.
        """
        got: dict[str, list[torch.Tensor]] = {n: [] for n in names}
        handles = []

        def hook_for(name: str) -> Callable[..., None]:
            def hook(_mod: torch.nn.Module, args: tuple[Any, ...]) -> None:
                x = args[0]
                got[name].append(x.detach().reshape(-1, x.shape[-1]).to(torch.float32).clone())
                if name == stop_after:
                    raise _Stop

            return hook

        try:
            for n in names:
                handles.append(self.linears[n].register_forward_pre_hook(hook_for(n)))
            with self.replaced(overrides):
                for t in texts:
                    try:
                        self.model(input_ids=self.ids(t), use_cache=False)
                    except _Stop:
                        pass
        finally:
            for h in handles:
                h.remove()
        missing = [n for n, xs in got.items() if not xs]
        if missing and strict:
            raise RuntimeError(f"linear layers not reached in the forward pass: {missing}")
        return {n: torch.cat(xs) for n, xs in got.items() if xs}

    def forward_order(self, names: Sequence[str], text: str) -> list[str]:
        """`names` in the order the forward pass first reaches them (unreached ones last)."""
        seen: list[str] = []
        handles = []
        try:
            for n in names:

                def hook(_m: torch.nn.Module, _a: tuple[Any, ...], _n: str = n) -> None:
                    if _n not in seen:
                        seen.append(_n)

                handles.append(self.linears[n].register_forward_pre_hook(hook))
            with torch.no_grad():
                self.model(input_ids=self.ids(text), use_cache=False)
        finally:
            for h in handles:
                h.remove()
        return seen + [n for n in names if n not in seen]

    @torch.no_grad()
    def nll(
        self, texts: Sequence[str], overrides: Mapping[str, torch.Tensor] | None = None
    ) -> tuple[float, int]:
        """Summed next-token negative log-likelihood (nats, float64) and the token count."""
        total = 0.0
        count = 0
        with self.replaced(overrides):
            for t in texts:
                ids = self.ids(t)
                if ids.shape[1] < 2:
                    continue
                logits = self.model(input_ids=ids, use_cache=False).logits[0, :-1]
                logp = torch.log_softmax(logits.to(torch.float64), dim=-1)
                target = ids[0, 1:]
                total += float(-logp.gather(1, target[:, None]).sum())
                count += int(target.numel())
        return total, count

    def perplexity(
        self, texts: Sequence[str], overrides: Mapping[str, torch.Tensor] | None = None
    ) -> float:
        """exp(mean token NLL) over `texts` (every token after the first of each text)."""
        total, count = self.nll(texts, overrides)
        if count == 0:
            raise ValueError("no text has two or more tokens; perplexity is undefined")
        return math.exp(total / count)
