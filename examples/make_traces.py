"""Regenerate the bundled example traces in examples/traces/ with the project's own commands.

    python examples/make_traces.py                  # all of it: Fashion-MNIST, ResNet-38 (the bundled example)
    python examples/make_traces.py --only dfs_b3    # one run (names as listed by --list)
    python examples/make_traces.py --list           # every run and whether it is done
    python examples/make_traces.py --example digits # the small digits example the tests use (tests/data/digits_traces)

Every step is a `python -m dfs_sim.train` or `python -m dfs_sim.export` call, printed before it runs, and the script
can be stopped at any time and started again, on this machine or a fresh one:
- a run whose trace exists is skipped;
- a run whose final checkpoint exists (joint.pt; SkipNet: hrl.pt) is only exported;
- a killed run resumes from its last checkpoint (`--resume .../last.pt`, written every `checkpoint_every` iterations);
- the backbone is trained once and copied into examples/checkpoints/ (commit it): later runs, here or on a fresh
  clone, start from the committed file and never retrain it;
- SkipNet's supervised phase is trained once (runs/<example>/skipnet_sp/sp.pt) and every SkipNet run's
  reinforcement-learning phase starts from it, as its authors do.
Seeds and the split are fixed in the config and recorded in every trace, so the same torch version on the same
machine type reproduces the files. The recipe and its reasons: examples/README.md.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NATIVE_OPTIONS = ("skip", "w2a2", "w4a4", "w4a8", "w8a4", "w8a8", "fp")  # Bit Fusion's native widths
SKIPNET_ALPHAS = (1.0, 1.5, 2.0, 3.0, 4.0, 8.0)  # from a calibration run: examples/README.md


def hardware_run_name(budget: float, preset: str, metric: str) -> str:
    """``dfs_b12-bitfusion-eyeriss-energy``: DFS at a 12% budget of Bit Fusion (Eyeriss) energy."""
    return f"dfs_b{budget:g}-{preset.replace('_', '-')}-{metric}"


@dataclass(frozen=True)
class Example:
    """One bundled example: a config, the runs trained from its backbone, and where things go."""

    name: str
    config: str
    depth: int
    dfs_budgets: tuple[float, ...]
    binary_budgets: tuple[float, ...]  # the binary-option ablation of DFS (skip or full precision, DFS's training)
    skipnet_alphas: tuple[float, ...]  # SkipNet as its authors train it: reward per skipped block
    hardware_budgets: tuple[tuple[float, str, str], ...]  # DFS with its budget on a preset: (budget, preset, metric)
    native_budgets: tuple[tuple[float, str, str], ...]  # the same with Bit Fusion's native option set (NATIVE)
    static: tuple[str, ...]
    beta: dict[str, float | None]  # per method; None keeps the config's β
    run_beta: dict[str, float]  # per run, beating the method's
    joint_settings: tuple[str, ...]  # --set overrides of the gate and joint runs
    skipnet_settings: tuple[str, ...]  # --set overrides of SkipNet's two phases
    backbone: str  # the committed backbone checkpoint
    work_dir: str  # checkpoints of the gate/joint runs (not committed)
    out: str  # traces

    def runs(self) -> list[tuple[str, str, float | None]]:
        """``(name, method, value)``: the gated runs (value: the budget; SkipNet: alpha), then the static baselines
        (value None)."""
        gated = [(f"dfs_b{b:g}", "dfs", b) for b in self.dfs_budgets]
        gated += [(f"dfs_binary_b{b:g}", "dfs_binary", b) for b in self.binary_budgets]
        gated += [(f"skipnet_a{a:g}", "skipnet", a) for a in self.skipnet_alphas]
        gated += [(hardware_run_name(b, preset, metric), "dfs", b) for b, preset, metric in self.hardware_budgets]
        gated += [(hardware_run_name(b, p, m) + "-native", "dfs", b) for b, p, m in self.native_budgets]
        return gated + [(f"static_{option}", "static", None) for option in self.static]

    def cost_basis(self, name: str) -> tuple[str, str] | None:
        """``(preset, metric)`` of a run whose budget is measured on a preset, else None (the paper's proxy)."""
        for budget, preset, metric in (*self.hardware_budgets, *self.native_budgets):
            if name.removesuffix("-native") == hardware_run_name(budget, preset, metric):
                return preset, metric
        return None

    def trace(self, name: str) -> Path:
        """``dfs_binary_b40`` → ``<out>/dfs_binary_r38_b40.parquet``."""
        method, setting = name.rsplit("_", 1)
        return ROOT / self.out / f"{method}_r{self.depth}_{setting}.parquet"


EXAMPLES = {
    "fashion-mnist": Example(
        name="fashion-mnist",
        config="examples/fashion_mnist_r38.toml",
        depth=38,
        dfs_budgets=(3, 4, 5, 8, 12, 20, 40),
        binary_budgets=(20, 50),
        skipnet_alphas=SKIPNET_ALPHAS,
        # budgets on the hardware at the energy (latency) of the proxy-trained DFS runs at 3, 5 and 8%, so that the
        # two kinds of gate meet at matched cost; static 8-bit is 17.8% of full-precision energy on Bit Fusion and
        # 12.9% of full-precision latency on Stripes
        hardware_budgets=(
            (12, "bitfusion_eyeriss", "energy"),
            (15, "bitfusion_eyeriss", "energy"),
            (21, "bitfusion_eyeriss", "energy"),
            (8.5, "stripes", "latency"),
            (11, "stripes", "latency"),
            (14, "stripes", "latency"),
        ),
        native_budgets=((15, "bitfusion_eyeriss", "energy"),),
        static=("q8", "q10", "q12", "q16", "fp"),
        # the binary ablation's one gated choice (skip or full precision) moves 16x the proxy cost of DFS's 8-bit
        # option per decision; a smaller β keeps its gates from flipping in bulk (as on digits)
        beta={"dfs": None, "dfs_binary": 0.00125},
        # below every-block-at-8-bits (6.25%) the gates must skip whole blocks; at the config's β the 3% run settled
        # at 5.3% computation in 300 iterations, so it gets 4x the push
        run_beta={
            "dfs_b3": 0.01,
            # fills the proxy front between 3 and 5%, where the lowest hardware-budget runs land
            "dfs_b4": 0.01,
            hardware_run_name(12, "bitfusion_eyeriss", "energy"): 0.01,
            hardware_run_name(8.5, "stripes", "latency"): 0.01,
        },
        joint_settings=("keep=best", "eval_every=25", "checkpoint_every=50"),
        # SkipNet keeps its last iterate: its trade-off is set by alpha, not by a budget to select against
        skipnet_settings=("eval_every=50", "checkpoint_every=50"),
        backbone="examples/checkpoints/fashion-mnist_r38_backbone.pt",
        work_dir="runs/fashion-mnist_r38",
        out="examples/traces",
    ),
    "digits": Example(
        name="digits",
        config="examples/digits_r38.toml",
        depth=38,
        dfs_budgets=(20, 40, 60),
        binary_budgets=(50, 75),
        skipnet_alphas=(),
        hardware_budgets=(),
        native_budgets=(),
        static=("q8", "q12", "q16", "fp"),
        beta={"dfs": None, "dfs_binary": 0.005},
        run_beta={},
        joint_settings=(),
        skipnet_settings=(),
        backbone="runs/digits_r38/backbone/backbone.pt",  # seconds to train: not committed
        work_dir="runs/digits_r38",
        out="tests/data/digits_traces",
    ),
}


def run(args: list[str | Path]) -> None:
    """Run one command from the repository root; paths inside it are passed relative to it, so the commands recorded
    in traces and checkpoints do not name this machine's folders."""
    words = [os.path.relpath(a, ROOT) if isinstance(a, Path) else a for a in args]
    print("+", shlex.join(words), flush=True)
    subprocess.run(words, cwd=ROOT, check=True)


def train(folder: Path, final: Path, fresh: list[str | Path], quiet: list[str]) -> None:
    """Train into ``folder`` until ``final`` exists: resume its ``last.pt`` when a killed run left one, else start
    with the ``fresh`` options."""
    if final.is_file():
        return
    resume = folder / "last.pt"
    options = ["--resume", resume] if resume.is_file() else [*fresh, "--out-dir", folder]
    run([sys.executable, "-m", "dfs_sim.train", *options, *quiet])


def train_backbone(example: Example, quiet: list[str]) -> Path:
    """The committed backbone, trained (or resumed) first if it is not there yet."""
    committed = ROOT / example.backbone
    if committed.is_file():
        return committed
    folder = ROOT / example.work_dir / "backbone"
    trained = folder / "backbone.pt"
    train(folder, trained, ["--config", example.config, "--stages", "backbone"], quiet)
    if trained != committed:
        slim_copy(trained, committed)
        print(f"backbone copied to {example.backbone}: commit it", flush=True)
    return committed


def slim_copy(trained: Path, committed: Path) -> None:
    """The checkpoint without what only resuming its own stage needs (optimizer momentum, batch-stream state, the
    best-so-far weights): a third of the size, and still a checkpoint every command reads."""
    import torch

    from dfs_sim._atomic import atomic_path

    record = torch.load(trained, map_location="cpu", weights_only=True)
    for key in ("optimizer", "stream", "best"):
        record.pop(key, None)
    committed.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(committed) as temporary:
        torch.save(record, temporary)


def make_run(example: Example, name: str, method: str, budget: float | None, backbone: Path, quiet: list[str]) -> None:
    trace = example.trace(name)
    if trace.is_file():
        print(f"{name}: {trace.relative_to(ROOT)} exists, skipped", flush=True)
        return
    if method == "static":
        run(
            [
                sys.executable,
                "-m",
                "dfs_sim.export",
                backbone,
                "--static-option",
                name.split("_", 1)[1],
                "--out",
                trace,
            ]
        )
        return
    if method == "skipnet":
        make_skipnet_run(example, name, budget, backbone, quiet)
        return
    folder = ROOT / example.work_dir / name
    joint = folder / "joint.pt"
    value = example.run_beta.get(name, example.beta[method])
    beta = [] if value is None else ["--beta", str(value)]
    settings = [item for setting in example.joint_settings for item in ("--set", setting)]
    basis = example.cost_basis(name)
    if basis is not None:
        settings += ["--set", f'cost.preset="{basis[0]}"', "--set", f'cost.metric="{basis[1]}"']
    if name.endswith("-native"):
        settings += ["--set", "options=[" + ", ".join(f'"{option}"' for option in NATIVE_OPTIONS) + "]"]
    model = ["--model", f"{method}_resnet{example.depth}", "--stages", "gate,joint", "--budget", f"{budget:g}"]
    train(folder, joint, ["--config", example.config, *model, *beta, *settings, "--init-from", backbone], quiet)
    run([sys.executable, "-m", "dfs_sim.export", joint, "--out", trace])


def make_skipnet_run(example: Example, name: str, alpha: float, backbone: Path, quiet: list[str]) -> None:
    """SkipNet's two phases: the supervised one once for the example, then reinforcement learning at ``alpha``."""
    model = ["--model", f"skipnet_resnet{example.depth}"]
    model += [item for setting in example.skipnet_settings for item in ("--set", setting)]
    supervised = ROOT / example.work_dir / "skipnet_sp"
    train(
        supervised,
        supervised / "sp.pt",
        ["--config", example.config, *model, "--stages", "sp", "--init-from", backbone],
        quiet,
    )
    folder = ROOT / example.work_dir / name
    final = folder / "hrl.pt"
    fresh = ["--config", example.config, *model, "--stages", "hrl", "--alpha", f"{alpha:g}"]
    train(folder, final, [*fresh, "--init-from", supervised / "sp.pt"], quiet)
    run([sys.executable, "-m", "dfs_sim.export", final, "--out", example.trace(name)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--example", choices=sorted(EXAMPLES), default="fashion-mnist")
    parser.add_argument("--only", action="append", default=[], metavar="RUN", help="only these runs (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the runs and which are done, then stop")
    parser.add_argument("--no-progress", action="store_true", help="log lines instead of progress bars")
    args = parser.parse_args()
    example = EXAMPLES[args.example]
    runs = example.runs()
    unknown = sorted(set(args.only) - {name for name, _, _ in runs})
    if unknown:
        print(
            f"error: --only: unknown run(s) {', '.join(unknown)}; valid: {', '.join(n for n, _, _ in runs)}",
            file=sys.stderr,
        )
        return 2
    if args.list:
        backbone_state = "committed" if (ROOT / example.backbone).is_file() else "to train"
        print(f"backbone: {backbone_state} ({example.backbone})")
        for name, _, _ in runs:
            state = "done" if example.trace(name).is_file() else "to do"
            print(f"{name}: {state} ({example.trace(name).relative_to(ROOT)})")
        return 0
    (ROOT / example.out).mkdir(parents=True, exist_ok=True)
    quiet = ["--no-progress"] if args.no_progress else []
    try:
        backbone = train_backbone(example, quiet)
        for name, method, budget in runs:
            if not args.only or name in args.only:
                make_run(example, name, method, budget, backbone, quiet)
    except subprocess.CalledProcessError as error:
        print(
            f"error: a step failed (exit {error.returncode}); rerun to continue from where it stopped", file=sys.stderr
        )
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun to continue from the last checkpoint", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
