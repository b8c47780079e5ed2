"""``python -m dfs_sim.replay TRACES_DIR``: replay per-input traces and write per-run results.

A thin command-line layer over ``analysis.pipeline.replay``; bad input ends in one line on stderr and exit code 2.
This module must not import torch: hardware people run it without a model.
"""

from __future__ import annotations

import argparse
import sys

from dfs_sim.errors import DfsSimError

EXIT_BAD_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dfs_sim.replay",
        description="Replay per-input DFS/SkipNet/static traces and summarise each run.",
    )
    parser.add_argument("traces", help="a folder of *.parquet trace files (or one trace file)")
    parser.add_argument("--out", default="results", help="output folder (default: results/)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = "python -m dfs_sim.replay " + " ".join(sys.argv[1:] if argv is None else argv)
    from analysis.pipeline import replay  # imported late so that --help stays instant

    try:
        result = replay(args.traces, out=args.out, command=command.strip())
    except DfsSimError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    columns = ["run", "method", "budget", "n", "accuracy", "computation_pct"]
    print(result.per_run[columns].to_string(index=False, float_format=lambda value: f"{value:.4g}"))
    print(f"wrote {result.out}/per_run.csv and manifest.json ({len(result.runs)} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
