"""The re-run of a claim: the composition root's bridge from `ledger.reproduce` to `runners`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson

from ledger.chain import Entry
from ledger.errors import InputError, UsageError
from ledger.reproduce import claim_statement
from ledger.statement import RunnerEvidence, Statement


class RunnerRerunner:
    """`ledger.reproduce.Rerunner` backed by the bundled runners (and plug-ins)."""

    def version(self, runner: str) -> str:
        """The version of `runner` installed here."""
        from runners.registry import get_runner

        return get_runner(runner).version

    def rerun(
        self,
        claim: Entry,
        *,
        model_path: Path | None = None,
        params: Mapping[str, Any] | None = None,
        repeat: int = 2,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> dict[str, Any]:
        """Re-run the claim's runner with its recorded params (overlaid by `params`)."""
        from runners.model import ModelSource
        from runners.registry import get_runner
        from runners.statement import run_runner

        statement = claim_statement(claim)
        pred = statement.predicate
        if not isinstance(pred, RunnerEvidence) or pred.runner is None or not pred.runner.version:
            raise UsageError(
                f"seq {claim.seq} is not runner evidence; only runner claims can be re-run"
            )
        runner = get_runner(pred.runner.name)
        recorded = dict(pred.params)
        recorded.update(params or {})
        model = pred.extra.get("model")
        model_doc = model if isinstance(model, dict) else {}
        if model_path is None and not model_doc.get("default"):
            raise UsageError(
                f"seq {claim.seq} was measured on {model_doc.get('path', 'a model file')!r}; "
                "pass it with --model PATH"
            )
        source = ModelSource(model_path)
        _check_subject(source, statement, model_path)
        fresh = run_runner(runner, source, recorded, repeat=repeat, progress=progress)
        # plain JSON types only (e.g. torch.__version__ is a str subclass validators reject)
        plain: dict[str, Any] = orjson.loads(orjson.dumps(fresh))
        return plain


def _check_subject(model: Any, claim: Statement, path: Path | None) -> None:
    """Refuse a model whose files are not the claim's subjects (by sha256)."""
    claimed = claim.subject_digests
    for info in model.files():
        if info.sha256 not in claimed:
            raise InputError(
                f"sha256 {info.sha256[:16]}… of {info.name} is not a subject of the claim "
                "(a reproduction must run on the same file)",
                path=path or info.path,
            )
