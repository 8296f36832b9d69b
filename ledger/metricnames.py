"""Metric names renamed over time: old entries stay readable under the new names.

`out_cos` was always the per-layer output cosine on calibration inputs (min over matrices),
not the model's output; it is now `layer_out_cos_min` (mean: `layer_out_cos_mean`). The
Gaussian figure was called a bound; it is a reference (`rd_gaussian_*`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: new name -> the older names that meant the same figure
ALIASES: dict[str, tuple[str, ...]] = {
    "layer_out_cos_min": ("out_cos",),
    "layer_out_cos_mean": ("out_cos_mean",),
    "layer_out_cos_min_rtn": ("out_cos_rtn",),
    "layer_out_cos_mean_rtn": ("out_cos_mean_rtn",),
    "rd_gaussian_ratio": ("rd_bound_ratio",),
    "rd_gaussian_efficiency": ("rd_efficiency",),
}
#: old name -> new name
RENAMED: dict[str, str] = {old: new for new, olds in ALIASES.items() for old in olds}


def with_aliases(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """`metrics` plus every new name whose figure an old entry holds under an old name (and
    the old names for new entries, so a policy written with either reads both)."""
    out = dict(metrics)
    for new, olds in ALIASES.items():
        for old in olds:
            if new not in out and old in metrics:
                out[new] = metrics[old]
            if old not in out and new in metrics:
                out[old] = metrics[new]
    return out
