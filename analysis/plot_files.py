"""A replay folder's plots, drawn again only when what they are drawn from has changed.

The frames a replay plots are determined by its inputs, its presets and the code that computes and draws them;
a stamp of those (``plots_stamp``) is written beside the plots, and a rerun whose stamp matches and finds every
file keeps them (``plots_current``). Hashing those is cheap, where hashing a per-input frame of millions of rows is
not.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from analysis.parts import FRAME_VERSION
from analysis.plot_workers import FORMATS, REPLAY_PLOTS, PlotWorkers, draw_replay_plots, plots_source
from cost_models.block_costs import MODEL_VERSION
from dfs_sim._atomic import atomic_write_text

__all__ = ["PLOTS_DIR", "PLOT_VERSION", "plots_current", "plots_stamp", "write_plots"]

PLOTS_DIR = "plots"
PLOT_VERSION = 9  # bump when a plot changes, so that stored plots are drawn again
PLOTS_STAMP = ".frames.sha256"


def plots_stamp(fingerprint: str, presets) -> str:
    """What the plots of a replay of the inputs ``fingerprint`` on ``presets`` are drawn from."""
    digest = hashlib.sha256(plots_source())
    digest.update(f"{PLOT_VERSION}:{FRAME_VERSION}:{MODEL_VERSION}:{fingerprint}".encode())
    for preset in presets:
        digest.update(preset.content_hash().encode())
    return digest.hexdigest()


def plots_current(folder: Path, stamp: str) -> bool:
    """Whether ``folder`` holds every plot, drawn from what ``stamp`` describes."""
    recorded = folder / PLOTS_STAMP
    expected = [folder / f"{stem}{suffix}" for stem in REPLAY_PLOTS for suffix in FORMATS]
    return recorded.is_file() and recorded.read_text() == stamp and all(path.is_file() for path in expected)


def write_plots(frames: dict, folder: Path, stamp: str, workers: PlotWorkers | None) -> None:
    """Draw every plot of ``frames`` into ``folder``; the stamp is written last (a folder without it is redrawn)."""
    folder.mkdir(exist_ok=True)
    (folder / PLOTS_STAMP).unlink(missing_ok=True)
    draw_replay_plots(frames, folder, workers)
    atomic_write_text(folder / PLOTS_STAMP, stamp)
