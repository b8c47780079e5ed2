"""What the replay draws, and the processes that draw it.

Drawing is matplotlib's text layout, one figure at a time on one core, so two processes halve the wall time on two
cores. The workers are fresh interpreters (spawn), which is safe beside Numba's and Arrow's threads, and they are
started before the replay computes anything, so that their interpreters and matplotlib load while it runs. This
module imports neither matplotlib nor pandas: the process that replays never loads them for plots it does not draw.
"""

from __future__ import annotations

import atexit
import importlib.util
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path

__all__ = ["REPLAY_PLOTS", "PlotWorkers", "draw_replay_plots", "plots_source"]

# File stem -> (figure function in analysis.plots, the frame it is drawn from, extra arguments). Slowest first, so
# that two processes finish close together.
REPLAY_PLOTS = {
    "decision_maps": ("decision_map_figure", "per_block", ()),
    "energy_parts_matched": ("energy_parts_figure", "per_run", ()),
    "energy_per_input": ("energy_distribution_figure", "boxes", ()),
    "energy_accuracy": ("frontier_figure", "per_run", ("energy_pj_mean",)),
    "energy_accuracy_zoom": ("frontier_figure", "per_run", ("energy_pj_mean", True)),
    "cost_bases": ("cost_basis_figure", "per_run", ()),
    "latency_accuracy": ("frontier_figure", "per_run", ("latency_us_mean",)),
    "latency_accuracy_zoom": ("frontier_figure", "per_run", ("latency_us_mean", True)),
}
FORMATS = (".png", ".svg")


def plots_source() -> bytes:
    """The plotting code and this table of plots, read without importing matplotlib (a stored plot is stale when
    either changes)."""
    spec = importlib.util.find_spec("analysis.plots")
    if spec is None or spec.origin is None:
        raise ImportError("cannot locate the source of analysis.plots")
    return Path(spec.origin).read_bytes() + Path(__file__).read_bytes()


def _start_worker(parent: int) -> None:
    """Ctrl-C reaches the whole process group; the replaying process handles it and shuts the workers down. A worker
    whose parent is killed outright (SIGKILL, SIGTERM) exits instead of waiting forever for work. At exit a worker
    skips the interpreter's teardown (freeing matplotlib and pandas, about 0.3 s) that the replaying process would
    wait for: its results have been sent and its files written and renamed by then."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    atexit.register(os._exit, 0)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


@contextmanager
def _interrupts_ignored():
    """Spawned interpreters inherit an ignored SIGINT, so a Ctrl-C before their initializer runs cannot kill them
    with a traceback. Signal handlers can only be set from the main thread; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _load_plots() -> None:
    import analysis.plots  # noqa: F401


def _draw_one(stem: str, frame, folder: Path) -> list[Path]:
    from analysis import plots

    function, _, extra = REPLAY_PLOTS[stem]
    return plots.save_figure(getattr(plots, function)(frame, *extra), folder, stem)


class PlotWorkers:
    """``workers`` spawned processes that load matplotlib as soon as they start; use as a context manager.

    Leaving the context lets the workers finish when they drew something and nothing went wrong; otherwise they are
    stopped at once (an error, or a rerun whose plots are current, does not wait for matplotlib to load).
    """

    def __init__(self, workers: int):
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(os.getpid(),),
        )
        self._used = False
        before = set(multiprocessing.active_children())
        with _interrupts_ignored():
            for _ in range(workers):  # each submission starts one process, which then loads matplotlib
                self._pool.submit(_load_plots)
        self._processes = [process for process in multiprocessing.active_children() if process not in before]

    def map(self, function, *iterables):
        self._used = True
        return self._pool.map(function, *iterables)

    def close(self, finish: bool = True) -> None:
        """Shut the workers down once they have done the work they were given (``finish``), or stop them now."""
        if not finish:
            for process in self._processes:
                process.terminate()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> PlotWorkers:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close(finish=self._used and exc_type is None)


def draw_replay_plots(frames: dict, folder: Path, workers: PlotWorkers | None = None) -> list[Path]:
    """Draw every replay plot from ``frames`` (per_run, per_block, boxes) into ``folder``, in ``workers`` or in
    this process; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [(stem, frames[source], folder) for stem, (_, source, _) in REPLAY_PLOTS.items()]
    if workers is None:
        return [path for job in jobs for path in _draw_one(*job)]
    return [path for paths in workers.map(_draw_one, *zip(*jobs, strict=True)) for path in paths]
