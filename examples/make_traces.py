"""Regenerate the bundled example traces in examples/traces/ with the project's own commands.

    python examples/make_traces.py            # everything, about 30-50 minutes on two busy CPU cores
    python examples/make_traces.py --reuse    # keep checkpoints already in the work folder (after an interruption)

Steps (each a `python -m dfs_sim.train` / `python -m dfs_sim.export` call, printed before it runs):
1. the ResNet-38 backbone on digits, once (examples/digits_r38.toml, stage "backbone");
2. per DFS budget and per SkipNet budget: stages "gate" and "joint" initialized from that backbone;
3. export every joint checkpoint on the digits test split, and the backbone as static baselines at q8, q12, q16, fp.
Seeds and the split are fixed in the config and recorded in every trace, so the same torch version on the same
machine type reproduces the files.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = "examples/digits_r38.toml"
DEPTH = 38
DFS_BUDGETS = (20, 40, 60)
SKIPNET_BUDGETS = (50, 75)
# β per method (the config's β = 0.01 suits DFS; SkipNet's skip-or-full choices cost 16x more per decision than DFS's
# 8-bit option, and at 0.01 its gates flip in bulk and accuracy collapses in this short schedule; 0.005 reaches the
# budgets and keeps accuracy)
BETA = {"dfs": None, "skipnet": 0.005}
STATIC = ("q8", "q12", "q16", "fp")


def run(args: list[str]) -> None:
    print("+", shlex.join(args), flush=True)
    subprocess.run(args, cwd=ROOT, check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work-dir", default="runs/digits_r38", help="checkpoints (not committed)")
    parser.add_argument("--out", default="examples/traces", help="trace folder")
    parser.add_argument("--reuse", action="store_true", help="skip training runs whose final checkpoint exists")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    work, out = Path(args.work_dir), Path(args.out)
    (ROOT / out).mkdir(parents=True, exist_ok=True)
    python = [sys.executable]
    quiet = ["--no-progress"] if args.no_progress else []

    backbone = work / "backbone" / "backbone.pt"
    if not (args.reuse and (ROOT / backbone).is_file()):
        run([*python, "-m", "dfs_sim.train", "--config", CONFIG, "--stages", "backbone",
             "--out-dir", str(work / "backbone"), *quiet])
    runs = [("dfs", b) for b in DFS_BUDGETS] + [("skipnet", b) for b in SKIPNET_BUDGETS]
    for method, budget in runs:
        folder = work / f"{method}_b{budget}"
        if not (args.reuse and (ROOT / folder / "joint.pt").is_file()):
            beta = [] if BETA[method] is None else ["--beta", str(BETA[method])]
            run([*python, "-m", "dfs_sim.train", "--config", CONFIG, "--model", f"{method}_resnet{DEPTH}",
                 "--stages", "gate,joint", "--budget", str(budget), *beta, "--init-from", str(backbone),
                 "--out-dir", str(folder), *quiet])
        run([*python, "-m", "dfs_sim.export", str(folder / "joint.pt"),
             "--out", str(out / f"{method}_r{DEPTH}_b{budget}.parquet")])
    for option in STATIC:
        run([*python, "-m", "dfs_sim.export", str(backbone), "--static-option", option,
             "--out", str(out / f"static_r{DEPTH}_{option}.parquet")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
