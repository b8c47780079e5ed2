"""``python -m dfs_sim.replay TRACES_DIR``: replay per-input traces on hardware presets and write frames and plots.

A thin command-line layer over ``analysis.pipeline.replay``; bad input ends in one line on stderr and exit code 2,
with nothing written. This module must not import torch: hardware people run it without a model.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import warnings
from contextlib import contextmanager, nullcontext

from dfs_sim.errors import DfsSimError, report_bad_input


def _preset_names(pattern: str) -> list[str]:
    """The shipped presets' names, read off the files (``cost_models.list_presets`` would import Numba, and
    ``--help`` stays instant)."""
    from importlib.util import find_spec
    from pathlib import Path

    spec = find_spec("cost_models")
    folders = spec.submodule_search_locations if spec is not None else None
    return sorted(path.stem for path in Path(next(iter(folders or ["."])), "presets").glob(pattern))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dfs_sim.replay",
        description="Replay per-input DFS / SkipNet / static traces on accelerator presets: per-input cycles and "
        "energy, per-run summaries, Pareto fronts, matched-cost comparisons and plots.",
    )
    parser.add_argument("traces", help="a folder of *.parquet trace files (or one trace file)")
    parser.add_argument("--out", default="results", help="output folder (default: results/)")
    parser.add_argument(
        "--presets",
        nargs="+",
        metavar="PRESET",
        help="preset names or paths to preset TOML files (default: every shipped preset: "
        f"{', '.join(_preset_names('*.toml'))}; also by name: {', '.join(_preset_names('reference/*.toml'))})",
    )
    parser.add_argument(
        "--force", action="store_true", help="write into an output folder that holds results of other inputs"
    )
    parser.add_argument(
        "--per-input",
        choices=("full", "compact", "none"),
        default="full",
        help="per-input rows, one Parquet file per run x preset under per_input/, streamed as the replay goes: "
        "'full' (default) every column; 'compact' only the costs (join the trace on input_id for the rest); 'none' "
        "no per-input rows. Every aggregate, front, comparison and plot is made in all three",
    )
    parser.add_argument(
        "--chunk-inputs",
        type=int,
        default=None,
        metavar="N",
        help="inputs replayed at a time (default 262144): memory grows with it, not with the trace's length",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="replay the traces on a local Dask cluster of this many processes (default 0: in this process, where "
        "the kernel already uses every core); worth it for many traces",
    )
    parser.add_argument(
        "--scheduler",
        help="address of an existing Dask scheduler (e.g. tcp://host:8786); its workers must see the traces and "
        "--out at the same paths",
    )
    parser.add_argument("--no-plots", action="store_true", help="skip the plots")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no tables on stdout")
    return parser


@contextmanager
def _one_line_warnings():
    """Warnings on the command line as one line, ``warning: ...``, not Python's file and source line."""
    shown = warnings.formatwarning
    warnings.formatwarning = lambda message, *_, **__: f"warning: {message}\n"
    try:
        yield
    finally:
        warnings.formatwarning = shown


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = shlex.join(["python", "-m", "dfs_sim.replay", *(sys.argv[1:] if argv is None else argv)])
    try:
        with _early_plot_workers(not args.no_plots and os.path.exists(args.traces)) as workers, _one_line_warnings():
            from analysis.pipeline import replay  # imported late so that --help stays instant

            result = replay(
                args.traces,
                presets=args.presets,
                out=args.out,
                force=args.force,
                plots=not args.no_plots,
                command=command,
                progress=False if args.quiet else None,
                plot_workers=workers,
                per_input=args.per_input,
                workers=args.workers,
                scheduler=args.scheduler,
                **({} if args.chunk_inputs is None else {"chunk_inputs": args.chunk_inputs}),
            )
    except (DfsSimError, OSError) as error:
        return report_bad_input(error, args.scheduler or args.out)
    if not args.quiet:
        print(_summary_table(result.per_run))
        print()
        print(_matched_table(result.matched))
        print(f"\nwrote {_shorter_path(result.out)}/")
        print(
            f"  {len(result.runs)} runs x {len(result.presets)} presets, {result.per_input_rows:,} per-input rows, "
            f"{result.reused_parts} parts reused, {result.timings.get('total_s', 0):.1f} s; whole tables in the "
            "CSV files"
        )
    return 0


def _shorter_path(path) -> str:
    """``path`` relative to the working folder when that is shorter."""
    relative = os.path.relpath(path)
    return relative if len(relative) < len(str(path)) else str(path)


def _early_plot_workers(plots: bool):
    """Plot workers started before the pipeline is even imported, so that matplotlib loads in them meanwhile (about
    a second sooner than the pipeline could start them); unused, they are stopped when the replay ends. None for a
    traces path that does not exist, so that the commonest mistake is reported without starting them."""
    if not plots or (os.cpu_count() or 1) < 2:
        return nullcontext()
    from analysis.plot_workers import PlotWorkers

    return PlotWorkers(2)


WIDTH = 120  # the terminal output fits this many columns, whatever the number of runs and presets
NAME_WIDTH = 40
PRESET_WIDTH = 8
VERDICT_LETTERS = {"better": "b", "worse": "w", "mixed": "m", "no difference": "="}


def _short(name: str, width: int = NAME_WIDTH) -> str:
    """``name`` cut in the middle to ``width`` characters (the full names are in the files)."""
    return name if len(name) <= width else name[: width // 2 - 1] + "…" + name[-(width - width // 2) :]


def _wrapped(words: list[str], indent: str = "  ") -> list[str]:
    """``words`` joined by spaces into lines of at most ``WIDTH`` characters."""
    lines, line = [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > WIDTH:
            lines.append(line)
            line = indent + word
        else:
            line = f"{line} {word}" if line else word
    return [*lines, line] if line else lines


def _summary_table(per_run) -> str:
    """One row per run, by family and cost: accuracy (%), the paper's proxy (%), and the mean energy per input (µJ) on
    as many presets as fit in ``WIDTH`` columns (numbered, with a legend); the rest are named at the end."""
    presets = list(dict.fromkeys(per_run["preset"]))
    fixed = NAME_WIDTH + 1 + 15 + 7 + 8
    shown = presets[: max(1, (WIDTH - fixed) // (PRESET_WIDTH + 1))]
    energy = per_run.pivot_table(index="run", columns="preset", values="energy_pj_mean", sort=False) * 1e-6
    first = per_run.drop_duplicates("run").set_index("run")
    family = first["family"] if "family" in first.columns else first["method"]
    order = first.assign(family=family, cost=energy[shown[0]]).sort_values(["family", "cost"]).index
    legend = ["Runs: accuracy, the paper's proxy, and mean energy per input (µJ) on"]
    legend += [f"[{number}] {preset}" for number, preset in enumerate(shown, start=1)]
    header = f"{'run':<{NAME_WIDTH}} {'family':<15} {'acc %':>6} {'proxy %':>7}" + "".join(
        f" {f'µJ [{number}]':>{PRESET_WIDTH}}" for number in range(1, len(shown) + 1)
    )
    lines = [*_wrapped(legend), header]
    for run in order:
        row = first.loc[run]
        cells = "".join(f" {energy.loc[run, p]:>{PRESET_WIDTH}.1f}" for p in shown)
        lines.append(
            f"{_short(run):<{NAME_WIDTH}} {_short(str(family[run]), 15):<15} {row['accuracy'] * 100:>6.2f} "
            f"{row['computation_pct']:>7.2f}{cells}"
        )
    if len(shown) < len(presets):
        lines.append(f"(energy on {len(presets) - len(shown)} more presets in per_run.csv)")
    return "\n".join(lines)


def _matched_table(matched) -> str:
    """Per preset and cost axis, how the DFS runs fare against each baseline by the paired tests (matched.csv)."""
    judged = matched[matched.get("paired_verdict", "") != ""] if "paired_verdict" in matched else matched.iloc[:0]
    if judged.empty:
        return "Paired comparison: no DFS run could be paired with a baseline run."
    baselines = list(dict.fromkeys(judged["baseline"]))
    shown = baselines[: max(1, (WIDTH - 33) // 17)]
    header = f"{'preset':<24} {'axis':<8}" + "".join(f" {_short(b, 16):>16}" for b in shown)
    lines = [
        "DFS runs against each baseline, paired tests (b better, w worse, m mixed, = no difference; matched.csv):",
        header,
    ]
    for (preset, axis), rows in judged.groupby(["preset", "axis"], sort=False):
        cells = []
        for baseline in shown:
            counts = rows[rows["baseline"] == baseline]["paired_verdict"].value_counts()
            text = " ".join(f"{counts[v]}{letter}" for v, letter in VERDICT_LETTERS.items() if v in counts)
            cells.append(f" {text or '-':>16}")
        lines.append(f"{_short(preset, 24):<24} {axis.split('_')[0]:<8}" + "".join(cells))
    return "\n".join(lines)


def _exit_on_terminate(signum, frame):
    """SIGTERM (a CI timeout, ``kill``) unwinds like an exception: the output folder's lock is released and the plot
    workers are told to stop."""
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _exit_on_terminate)
    exit_code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Every output is written, renamed and closed by now; skip the interpreter's teardown (about 0.5 s of freeing
    # Numba's kernels, pandas and Arrow), which is a twentieth of a replay of the bundled example.
    os._exit(exit_code)
