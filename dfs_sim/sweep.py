"""``python -m dfs_sim.sweep SPEC TRACES_DIR --out DIR``: evaluate traces across a design space of accelerators.

A thin command-line layer over ``analysis.sweep.run_sweep``; bad input ends in one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from dfs_sim.errors import EXIT_BAD_INPUT, DfsSimError, report_bad_input


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dfs_sim.sweep",
        description="Sweep hardware presets along axes from a TOML spec and measure where DFS pays off.",
    )
    parser.add_argument("spec", help="sweep spec TOML (see examples/sweeps/)")
    parser.add_argument("traces", help="a folder of *.parquet trace files")
    parser.add_argument("--out", default="sweep_results", help="output folder (default: sweep_results/)")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="Dask workers of a local cluster; 0 runs in this process (default: in this process for "
        "at most 400 point x run evaluations, which take less time than a cluster takes to "
        "start, else 2)",
    )
    parser.add_argument("--scheduler", help="address of an existing Dask scheduler (e.g. tcp://host:8786)")
    parser.add_argument("--force", action="store_true", help="write into a folder that holds another sweep")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no table")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.workers is not None and args.workers < 0:
        print("error: --workers: must be 0 or more", file=sys.stderr)
        return EXIT_BAD_INPUT
    command = shlex.join(["python", "-m", "dfs_sim.sweep", *(sys.argv[1:] if argv is None else argv)])
    try:
        from analysis.matched import BASELINES
        from analysis.sweep import run_sweep

        result = run_sweep(
            args.spec,
            args.traces,
            out=args.out,
            workers=args.workers,
            scheduler=args.scheduler,
            force=args.force,
            progress=False if args.quiet else None,
            command=command,
        )
    except (DfsSimError, OSError) as error:
        return report_bad_input(error, args.scheduler or args.out)
    if not args.quiet:
        frame = result.frame
        dfs = frame[frame["method"] == "dfs"]
        axes = [column for column in frame.columns if column.startswith("axis:")]
        ratios = dfs.groupby("point")[[f"energy_ratio_vs_{baseline}" for baseline in BASELINES]].mean()
        ratios = ratios.dropna(axis=1, how="all")  # a baseline no DFS run can be matched with says nothing
        ratios.columns = [column.replace("energy_ratio_", "") for column in ratios.columns]
        values = frame.groupby("point")[axes].first().rename(columns=lambda column: column.removeprefix("axis:"))
        summary = values.join(ratios)
        print(
            f"{len(frame['point'].unique())} points x {frame['run'].nunique()} runs; "
            f"{result.reused_partitions} of {result.partitions} partitions reused"
        )
        absent = [b for b in BASELINES if f"vs_{b}" not in ratios.columns]
        print(
            "Mean energy ratio, baseline / DFS at matched accuracy, per design point"
            + (f" (no DFS run matched against {', '.join(absent)})" if absent else "")
            + ":"
        )
        print(summary.to_string(float_format=lambda value: f"{value:.2f}", max_colwidth=24))
        print(f"wrote {result.out}/sweep.parquet and plots/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
