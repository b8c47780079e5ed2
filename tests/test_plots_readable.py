"""Every replay plot stays readable from 1 to 100 runs: no text drawn over other text, none clipped by the figure.

The runs are synthetic (tests.factories) with names as long as the bundle's; the frames are the replay's own. Text is
what matplotlib actually draws (``Text.draw`` is watched), measured by its window extent after the layout is solved.
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot
import matplotlib.text
import pytest

from analysis import plots
from analysis.pipeline import replay
from analysis.plot_workers import REPLAY_PLOTS
from tests.factories import make_run, write_runs

METHODS = ("dfs", "skipnet", "static", "dfs_binary", "early_exit")  # early_exit: a method the project does not know
SLACK = 1.0  # pixels: touching is not overlapping


def _runs(count: int) -> dict:
    """``count`` runs of every method in turn, named as long as the bundle's runs, some of them seeds of others."""
    runs = {}
    for index in range(count):
        method = METHODS[index % len(METHODS)]
        suffix = "-bitfusion-eyeriss-energy-native" if index % 3 == 0 else ""
        name = f"{method}_r8_b{index // 5}{suffix}" + (f"-s{index % 5}" if index % 5 else "")
        static = 1 + index % 5 if method == "static" else None
        runs[f"{name}.parquet"] = make_run(method, n=30, seed=index, static_code=static)
    return runs


@pytest.fixture(scope="module", params=[1, 30, 100], ids=lambda n: f"{n}_runs")
def frames(request, tmp_path_factory):
    count = request.param
    folder = write_runs(tmp_path_factory.mktemp(f"runs{count}"), _runs(count))
    result = replay(folder, out=None, plots=False, progress=False, per_input="none")
    return {"per_run": result.per_run, "per_block": result.per_block, "boxes": result.boxes}


def _drawn_text(figure, monkeypatch) -> list:
    drawn = []
    original = matplotlib.text.Text.draw

    def watched(self, renderer):
        original(self, renderer)
        if self.get_visible() and self.get_text().strip():
            drawn.append((self, self.get_window_extent(renderer)))

    monkeypatch.setattr(matplotlib.text.Text, "draw", watched)
    figure.set_dpi(plots.PNG_DPI)
    figure.canvas.draw()
    return drawn


@pytest.mark.parametrize("stem", list(REPLAY_PLOTS))
def test_no_text_overlaps_or_is_clipped(frames, stem, monkeypatch):
    function, source, extra = REPLAY_PLOTS[stem]
    figure = getattr(plots, function)(frames[source], *extra)
    try:
        drawn = _drawn_text(figure, monkeypatch)
        box = figure.bbox
        clipped = [
            text.get_text()
            for text, extent in drawn
            if extent.x0 < box.x0 - SLACK
            or extent.y0 < box.y0 - SLACK
            or extent.x1 > box.x1 + SLACK
            or extent.y1 > box.y1 + SLACK
        ]
        assert not clipped, f"{stem}: text outside the figure: {clipped[:5]}"
        overlapping = []
        for i, (first, a) in enumerate(drawn):
            for second, b in drawn[i + 1 :]:
                if min(a.x1, b.x1) - max(a.x0, b.x0) > SLACK and min(a.y1, b.y1) - max(a.y0, b.y0) > SLACK:
                    overlapping.append((first.get_text(), second.get_text()))
        assert not overlapping, f"{stem}: {len(overlapping)} overlapping texts, e.g. {overlapping[:3]}"
        width, height = figure.get_size_inches() * plots.PNG_DPI
        assert width <= 2400 and height <= 12000, f"{stem}: {width:.0f} x {height:.0f} px"
    finally:
        matplotlib.pyplot.close(figure)


@pytest.mark.parametrize("zoom", [False, True])
def test_the_fronts_share_one_legend_below_the_panels(frames, zoom):
    figure = plots.frontier_figure(frames["per_run"], zoom=zoom)
    assert all(axis.get_legend() is None for axis in figure.axes)  # none inside a panel, over its runs
    (legend,) = figure.legends
    labels = [text.get_text() for text in legend.get_texts()]
    drawn = {label for axis in figure.axes for label in axis.get_legend_handles_labels()[1]}
    assert len(labels) == len(set(labels)) and set(labels) == drawn
    matplotlib.pyplot.close(figure)
