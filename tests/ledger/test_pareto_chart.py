"""The report chart: one mark per runner, labels apart, every point inside, legend outside."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import matplotlib
import pytest

from ledger.report import (
    REFERENCE_LABEL,
    ParetoPoint,
    draw_pareto,
    is_implausible,
    runner_marks,
    write_pareto_svg,
)

matplotlib.use("Agg")

# the demo ledger's shape: pareto and proxy at the very same spot, seq 7 and 13 close together,
# a legacy claim above the Gaussian reference at cos_min 0.999954
POINTS = [
    ParetoPoint(2, "sha256:02", "static", 3.5556, 0.99480, "evidence"),
    ParetoPoint(3, "sha256:03", "pareto", 3.7647, 0.99260, "evidence"),
    ParetoPoint(5, "sha256:05", "proxy", 3.7647, 0.99260, "evidence"),
    ParetoPoint(6, "sha256:06", "entropy", 4.1489, 0.99260, "evidence"),
    ParetoPoint(7, "sha256:07", "hessian", 3.7647, 0.97982, "evidence"),
    ParetoPoint(13, "sha256:13", "hessian", 3.8, 0.97990, "evidence"),
    ParetoPoint(4, "sha256:04", "pq", 7.7809, 0.91781, "evidence"),
    ParetoPoint(9, "sha256:09", "evidence.v43.v1", 4.0, 0.999954, "evidence"),
]


@pytest.fixture
def drawn() -> Any:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.2, 4.6))
    draw_pareto(ax, POINTS, {2: "reproduced"})
    fig.canvas.draw()
    yield ax
    plt.close(fig)


def test_each_runner_has_its_own_colour_and_marker() -> None:
    marks = runner_marks(sorted({p.runner or "?" for p in POINTS}))
    assert len({(m.colour, m.marker) for m in marks.values()}) == len(marks)
    assert len({m.colour for m in marks.values()}) == len(marks)
    assert len({m.glyph for m in marks.values()}) == len(marks)


def test_labels_never_overlap_and_stay_inside(drawn: Any) -> None:
    renderer = drawn.figure.canvas.get_renderer()
    labels = [t for t in drawn.texts]
    assert sorted(t.get_text() for t in labels) == sorted(["2", "3, 5", "4", "6", "7", "13", "9!"])
    boxes = [t.get_window_extent(renderer) for t in labels]
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b), (a, b)
    axes = drawn.get_window_extent(renderer)
    for box in boxes:
        assert axes.x0 <= box.x0 and box.x1 <= axes.x1 and axes.y0 <= box.y0 and box.y1 <= axes.y1


def test_every_point_is_inside_the_axes(drawn: Any) -> None:
    (x_hi, x_lo), (y_lo, y_hi) = drawn.get_xlim(), drawn.get_ylim()  # x inverted
    for p in POINTS:
        gap = 1 - p.cos_min
        assert x_lo < gap < x_hi and y_lo < p.ratio < y_hi
        # and not on the edge: half a marker would be clipped there
        assert x_lo * 1.5 < gap


def test_implausible_is_marked_and_the_curve_is_a_reference(drawn: Any) -> None:
    assert [p.seq for p in POINTS if is_implausible(p)] == [9]
    legend = drawn.get_legend()
    texts = [t.get_text() for t in legend.get_texts()]
    assert REFERENCE_LABEL in texts and "not a bound" in REFERENCE_LABEL
    assert any("implausible" in t for t in texts)
    assert any("not yet reproduced" in t for t in texts)
    label = next(t for t in drawn.texts if t.get_text() == "9!")
    assert label.get_color() != next(t for t in drawn.texts if t.get_text() == "2").get_color()


def test_legend_is_outside_the_data(drawn: Any) -> None:
    renderer = drawn.figure.canvas.get_renderer()
    legend = drawn.get_legend().get_window_extent(renderer)
    assert legend.x0 >= drawn.get_window_extent(renderer).x1


def test_svg_is_written_with_text_as_text(tmp_path: Path) -> None:
    out = write_pareto_svg(POINTS, tmp_path / "p.svg", verdicts={2: "reproduced"})
    text = out.read_text()
    assert text.lstrip().startswith("<?xml") and "not a bound" in text
    write_pareto_svg([], tmp_path / "empty.svg")
    assert "<svg" in (tmp_path / "empty.svg").read_text()
