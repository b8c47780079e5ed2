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
  reinforcement-learning phase starts from it, as its authors do;
- a trace made with another quantizer than the example's (``quantizer``, the config's) is out of date and is made
  again; runs that quantize nothing (SkipNet, the binary ablation, full precision) are current under any quantizer.
Runs go in the order of ``Example.runs``: the cheap and new baselines first, retraining of older runs last.
Seeds and the split are fixed in the config and recorded in every trace, so the same torch version on the same
machine type reproduces the files; a run named ``...-sN`` trains with seed N. The recipe: examples/README.md.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NATIVE_OPTIONS = ("skip", "w2a2", "w4a4", "w4a8", "w8a4", "w8a8", "fp")  # Bit Fusion's native widths
LOWBIT_OPTIONS = ("skip", "q3", "q4", "q5", "q6", "q8", "fp")  # DFS below 8 bits, where the static front lies
GATED_METHODS = ("dfs", "dfs_binary")  # the methods trained with a gate stage
SKIPNET_ALPHAS = (1.0, 1.5, 2.0, 3.0, 4.0, 8.0)  # from a calibration run: examples/README.md


def hardware_run_name(budget: float, preset: str, metric: str) -> str:
    """``dfs_b12-bitfusion-eyeriss-energy``: DFS at a 12% budget of Bit Fusion (Eyeriss) energy."""
    return f"dfs_b{budget:g}-{preset.replace('_', '-')}-{metric}"


def mixed_run_name(target: float, preset: str, metric: str) -> str:
    """``mixed_bitfusion-eyeriss-energy-9.1``: per-layer mixed precision at 9.1% of Bit Fusion (Eyeriss) energy."""
    return f"mixed_{preset.replace('_', '-')}-{metric}-{target:g}"


def seeded(name: str, seed: int) -> str:
    """``name`` for seed ``seed``: seed 0 keeps the plain name, others end in ``-sN``."""
    return name if seed == 0 else f"{name}-s{seed}"


def split_seed_suffix(name: str) -> tuple[str, int]:
    """``("dfs_b2.5-lowbit", 1)`` from ``dfs_b2.5-lowbit-s1``; a name without ``-sN`` has seed 0."""
    stem, _, last = name.rpartition("-s")
    return (stem, int(last)) if stem and last.isdecimal() else (name, 0)


# The runs exported again with the activation bits each decision needed (docs/hardware.md §2.3): per group of 16
# channels at one position, per group of 16 channels x 16 windows, and per step as DNNsim's ShapeShifter and Loom
# charge it: on the geometry of stripes_dynamic (one bit a cycle) and of loom_dynamic (two bits a cycle, so each
# step's width is rounded up to even bits before the mean).
DYNAMIC_OUT = "examples/traces_dynamic"
DYNAMIC_FORMS = {
    "": ["--effective-precision"],
    "-windows": ["--effective-precision", "--precision-positions", "16"],
    "-steps": ["--effective-precision", "--precision-measure", "step", "--precision-preset", "stripes_dynamic"],
    "-loom-steps": ["--effective-precision", "--precision-measure", "step", "--precision-preset", "loom_dynamic"],
}


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
    static: tuple[str, ...]  # post-training static widths (qN, wNaM, fp)
    qat: tuple[str, ...]  # quantization-aware static widths, one fine-tune each per seed
    qat_seeds: tuple[int, ...]
    mixed: tuple[tuple[float, str, str], ...]  # per-layer mixed precision: (target %, preset, metric)
    mixed_widths: tuple[str, ...]  # the widths its search chooses from
    lowbit_budgets: tuple[float, ...]  # DFS with LOWBIT_OPTIONS on the proxy
    lowbit_hardware: tuple[tuple[float, str, str], ...]  # the same with the budget on a preset
    lowbit_seeds: dict[float, tuple[int, ...]]  # further seeds of some proxy low-bit budgets
    beta_by_method: dict[str, float | None]  # per method; None keeps the config's β
    run_beta: dict[str, float]  # per run, beating the method's
    run_settings: dict[str, tuple[str, ...]]  # per run (all its seeds), --set overrides after joint_settings
    joint_settings: tuple[str, ...]  # --set overrides of the gate and joint runs
    skipnet_settings: tuple[str, ...]  # --set overrides of SkipNet's two phases
    dynamic: tuple[str, ...]  # runs exported again with effective precisions, after every run is made
    backbone: str  # the committed backbone checkpoint
    work_dir: str  # checkpoints of the gate/joint runs (not committed)
    out: str  # traces

    def runs(self) -> list[tuple[str, str, float | None]]:
        """``(name, method, value)`` in the order they are made (value: the budget; SkipNet: alpha; mixed
        precision: the target; static: None): post-training static, quantization-aware seed 0, mixed precision,
        low-bit DFS, the further seeds (what the seed statistics need, before the longer retrains), the 7-option
        DFS runs, then the binary ablation and SkipNet."""
        first_seed = [s for s in self.qat_seeds if s == 0]
        later_seeds = [s for s in self.qat_seeds if s != 0]
        runs: list[tuple[str, str, float | None]] = [(f"static_{option}", "static", None) for option in self.static]
        runs += [(seeded(f"qat_{w}", s), "qat", None) for s in first_seed for w in self.qat]
        runs += [(mixed_run_name(t, p, m), "mixed", t) for t, p, m in self.mixed]
        runs += [(f"dfs_b{b:g}-lowbit", "dfs", b) for b in self.lowbit_budgets]
        runs += [(hardware_run_name(b, p, m) + "-lowbit", "dfs", b) for b, p, m in self.lowbit_hardware]
        runs += [(seeded(f"qat_{w}", s), "qat", None) for s in later_seeds for w in self.qat]
        runs += [(seeded(f"dfs_b{b:g}-lowbit", s), "dfs", b) for b, seeds in self.lowbit_seeds.items() for s in seeds]
        runs += [(f"dfs_b{b:g}", "dfs", b) for b in self.dfs_budgets]
        runs += [(hardware_run_name(b, preset, metric), "dfs", b) for b, preset, metric in self.hardware_budgets]
        runs += [(hardware_run_name(b, p, m) + "-native", "dfs", b) for b, p, m in self.native_budgets]
        runs += [(f"dfs_binary_b{b:g}", "dfs_binary", b) for b in self.binary_budgets]
        runs += [(f"skipnet_a{a:g}", "skipnet", a) for a in self.skipnet_alphas]
        return runs

    def options(self, name: str) -> tuple[str, ...] | None:
        """The DFS option set a run's name asks for (None: the method's own)."""
        stem = split_seed_suffix(name)[0]
        if stem.endswith("-native"):
            return NATIVE_OPTIONS
        if stem.endswith("-lowbit"):
            return LOWBIT_OPTIONS
        return None

    def cost_basis(self, name: str) -> tuple[str, str] | None:
        """``(preset, metric)`` of a run whose budget is measured on a preset, else None (the paper's proxy)."""
        stem = split_seed_suffix(name)[0].removesuffix("-native").removesuffix("-lowbit")
        for budget, preset, metric in (*self.hardware_budgets, *self.native_budgets, *self.lowbit_hardware):
            if stem == hardware_run_name(budget, preset, metric):
                return preset, metric
        return None

    @property
    def quantizer(self) -> str:
        """The quantizer every quantizing run uses: the config's (the project's default when it names none)."""
        from dfs_sim.model.quantize import DEFAULT_QUANTIZER

        return str(self._config_value("quantizer", DEFAULT_QUANTIZER))

    @functools.cached_property
    def _config_file(self) -> dict[str, Any]:
        """The example's config file, read once (every run's staleness check asks it)."""
        from dfs_sim._toml import read_toml

        return read_toml(ROOT / self.config)

    def _config_value(self, key: str, default: Any = None) -> Any:
        """A top-level setting of the example's config file (``default`` when it names none)."""
        return self._config_file.get(key, default)

    def quantizes(self, name: str, method: str) -> bool:
        """Whether a run's trace depends on the quantizer: DFS with quantized options, static below full
        precision, quantization-aware and mixed-precision runs."""
        if method in ("skipnet", "dfs_binary"):
            return False
        return name != "static_fp"

    def current(self, name: str, method: str) -> bool:
        """Whether the run's trace exists and was made with the example's quantizer (when it quantizes), its own
        ``run_settings`` and (when it has a gate stage) the gate stage's weight it would be trained with now."""
        path = self.trace(name)
        if not path.is_file():
            return False
        if not self.quantizes(name, method) and method not in GATED_METHODS:
            return True
        from dfs_sim.errors import DfsSimError
        from dfs_sim.traces import open_trace

        try:
            meta = open_trace(path).meta
        except DfsSimError:  # an unreadable trace is made again
            return False
        if self.quantizes(name, method) and meta.get("quantizer", "dfs_authors") != self.quantizer:
            return False
        return self.trained_as_now(name, method, meta.get("train_config") or {})

    def trained_as_now(self, name: str, method: str, trained: dict) -> bool:
        """Whether a run trained with config ``trained`` (a trace's ``train_config``, a checkpoint's ``config``)
        had the run's own ``run_settings`` and, with a gate stage, the gate stage's weight it would get now."""
        gate_push_ok = method not in GATED_METHODS or self._gate_push_matches(name, method, trained)
        return self._settings_match(name, trained) and gate_push_ok

    def _settings_match(self, name: str, trained: dict) -> bool:
        """Whether a run was trained with its own ``run_settings`` (a setting added later remakes it)."""
        import tomllib

        from dfs_sim.model.config import TrainConfig

        for setting in self.run_settings.get(split_seed_suffix(name)[0], ()):
            key, value = setting.split("=", 1)
            wanted = tomllib.loads(f"v = {value}")["v"]
            if trained.get(key, getattr(TrainConfig(), key)) != wanted:
                return False
        return True

    def beta(self, name: str, method: str) -> float:
        """The cost term's weight of a gated run's joint stage: its own, its method's, else the config's."""
        from dfs_sim.model.config import TrainConfig

        value = self.run_beta.get(split_seed_suffix(name)[0], self.beta_by_method[method])
        return float(self._config_value("beta", TrainConfig.beta) if value is None else value)

    def gate_beta(self, name: str, method: str) -> float:
        """The cost term's weight of a gated run's gate stage: the config's ``gate_beta``, else the run's β."""
        value = self._config_value("gate_beta")
        return self.beta(name, method) if value is None else float(value)

    def _gate_push_matches(self, name: str, method: str, trained: dict) -> bool:
        """Whether a gated run was trained with the gate stage's weight it would get now (runs from before
        ``gate_beta`` existed had their β there)."""
        if "beta" not in trained:
            return False
        pushed = trained.get("gate_beta")
        return math.isclose(trained["beta"] if pushed is None else pushed, self.gate_beta(name, method))

    def work_folder(self, name: str, method: str) -> Path:
        """Where a trained run's checkpoints go: under the quantizer's name when the run quantizes, so that a run
        trained under another quantizer is never resumed or exported as this one."""
        if self.quantizes(name, method):
            return ROOT / self.work_dir / self.quantizer / name
        return ROOT / self.work_dir / name

    def trace(self, name: str) -> Path:
        """``dfs_binary_b40`` → ``<out>/dfs_binary_r38_b40.parquet``."""
        method, setting = name.rsplit("_", 1)
        return ROOT / self.out / f"{method}_r{self.depth}_{setting}.parquet"

    def dynamic_traces(self, name: str) -> dict[Path, list[str]]:
        """The effective-precision exports of a run (``DYNAMIC_FORMS``) in ``DYNAMIC_OUT``, with their options."""
        stem = self.trace(name).stem
        return {ROOT / DYNAMIC_OUT / f"{stem}{suffix}.parquet": options for suffix, options in DYNAMIC_FORMS.items()}


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
        static=("q2", "q3", "q4", "q5", "q6", "q7", "q8", "q10", "q12", "q16", "fp", "w8a4", "w4a8", "w6a4", "w4a6"),
        # w4a4 is q4 (the same widths, one option): the fourth width is Bit Fusion's native w4a8
        qat=("q3", "q4", "w4a8", "w8a4"),
        qat_seeds=(0, 1, 2),
        # targets at the cost of uniform q3, q4 and q5 on each preset, so mixed and uniform meet at matched cost
        mixed=(
            (7.2, "bitfusion_eyeriss", "energy"),
            (9.1, "bitfusion_eyeriss", "energy"),
            (12.2, "bitfusion_eyeriss", "energy"),
            (5.0, "stripes", "latency"),
            (6.6, "stripes", "latency"),
            (8.2, "stripes", "latency"),
        ),
        mixed_widths=("q2", "q3", "q4", "q5", "q6", "q8", "w8a4", "w4a8"),
        # the proxy costs q3 0.9%, q4 1.6%, q5 2.4%, q6 3.5%, q8 6.25%: budgets across that span
        lowbit_budgets=(1, 1.5, 2.5, 4),
        lowbit_hardware=((8, "bitfusion_eyeriss", "energy"), (11, "bitfusion_eyeriss", "energy")),
        lowbit_seeds={1.5: (1, 2), 2.5: (1, 2), 4: (1, 2)},
        # the binary ablation's one gated choice (skip or full precision) moves 16x the proxy cost of DFS's 8-bit
        # option per decision; a smaller β keeps its gates from flipping in bulk (as on digits)
        beta_by_method={"dfs": None, "dfs_binary": 0.00125},
        # below every-block-at-8-bits (6.25%) the gates must skip whole blocks; at the config's β the 3% run settled
        # at 5.3% computation in 300 iterations, so it gets 4x the push
        run_beta={
            "dfs_b3": 0.01,
            # fills the proxy front between 3 and 5%, where the lowest hardware-budget runs land
            "dfs_b4": 0.01,
            hardware_run_name(12, "bitfusion_eyeriss", "energy"): 0.01,
            hardware_run_name(8.5, "stripes", "latency"): 0.01,
            # the low-bit budgets lie below every block at 8 bits, as 3 and 4% do: the same push. (0.04 saturated the
            # gates at full precision in the gate stage, which shares β: 100% computation after 50 joint iterations)
            **{f"dfs_b{b:g}-lowbit": 0.01 for b in (1, 1.5, 2.5, 4)},
            **{hardware_run_name(b, "bitfusion_eyeriss", "energy") + "-lowbit": 0.01 for b in (8, 11)},
        },
        # 2 points either side of a 1 or 1.5% budget spans 0-3.5%: both runs kept the same 2.3% evaluation
        run_settings={f"dfs_b{b:g}-lowbit": ("keep_within=0.5",) for b in (1, 1.5)},
        joint_settings=("keep=best", "eval_every=25", "checkpoint_every=50"),
        # SkipNet keeps its last iterate: its trade-off is set by alpha, not by a budget to select against
        skipnet_settings=("eval_every=50", "checkpoint_every=50"),
        dynamic=("dfs_b4", "dfs_b20", "static_q8"),
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
        qat=(),
        qat_seeds=(),
        mixed=(),
        mixed_widths=(),
        lowbit_budgets=(),
        lowbit_hardware=(),
        lowbit_seeds={},
        beta_by_method={"dfs": None, "dfs_binary": 0.005},
        run_beta={},
        run_settings={},
        joint_settings=(),
        skipnet_settings=(),
        dynamic=(),
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


def make_run(example: Example, name: str, method: str, value: float | None, backbone: Path, quiet: list[str]) -> None:
    trace = example.trace(name)
    if example.current(name, method):
        print(f"{name}: {trace.relative_to(ROOT)} exists, skipped", flush=True)
        return
    if trace.is_file():
        print(
            f"{name}: {trace.relative_to(ROOT)} was made with another quantizer or settings; making it again",
            flush=True,
        )
    quantizer = ["--quantizer", example.quantizer]
    if method == "static":
        option = name.split("_", 1)[1]
        run([sys.executable, "-m", "dfs_sim.export", backbone, "--static-option", option, *quantizer, "--out", trace])
        return
    if method == "mixed":
        target, preset, metric = next(m for m in example.mixed if mixed_run_name(*m) == name)
        cache = ROOT / example.backbone.replace(".pt", f"_sensitivity_{example.quantizer}.csv")
        widths = ["--widths", ",".join(example.mixed_widths), "--sensitivity", cache]
        cost = ["--preset", preset, "--metric", metric, "--target", f"{target:g}"]
        run([sys.executable, "-m", "dfs_sim.mixed", backbone, *cost, *widths, *quantizer, "--out", trace])
        return
    if method == "skipnet":
        make_skipnet_run(example, name, value, backbone, quiet)
        return
    stem, seed = split_seed_suffix(name)
    folder = example.work_folder(name, method)
    own_settings = (*example.joint_settings, *example.run_settings.get(stem, ()))
    settings = [item for setting in own_settings for item in ("--set", setting)]
    seed_option = ["--seed", str(seed)] if seed else []
    if method == "qat":
        final = folder / "qat.pt"
        widths = ["--set", f'static_options=["{stem.split("_", 1)[1]}"]']
        model = ["--model", f"static_resnet{example.depth}", "--stages", "qat", *widths, *seed_option]
        train(folder, final, ["--config", example.config, *model, *settings, "--init-from", backbone], quiet)
        run([sys.executable, "-m", "dfs_sim.export", final, "--out", trace])
        return
    joint = folder / "joint.pt"
    beta = ["--beta", f"{example.beta(name, method):g}"]
    basis = example.cost_basis(name)
    if basis is not None:
        settings += ["--set", f'cost.preset="{basis[0]}"', "--set", f'cost.metric="{basis[1]}"']
    options = example.options(name)
    if options is not None:
        settings += ["--set", "options=[" + ", ".join(f'"{option}"' for option in options) + "]"]
    model = ["--model", f"{method}_resnet{example.depth}", "--stages", "gate,joint", "--budget", f"{value:g}"]
    model += seed_option
    set_aside_superseded(example, name, method, folder)
    train(folder, joint, ["--config", example.config, *model, *beta, *settings, "--init-from", backbone], quiet)
    run([sys.executable, "-m", "dfs_sim.export", joint, "--out", trace])


def set_aside_superseded(example: Example, name: str, method: str, folder: Path) -> None:
    """Move a run's checkpoints trained otherwise than the run is now (an earlier gate push or run settings) to
    ``<folder>.superseded`` (then ``.superseded1``, ...): kept, but never resumed or exported as this run."""
    from dfs_sim.model.checkpoint import CheckpointError, load_checkpoint

    checkpoint = next((folder / f for f in ("joint.pt", "last.pt", "gate.pt") if (folder / f).is_file()), None)
    if checkpoint is None:
        return
    try:
        record = load_checkpoint(checkpoint)
    except CheckpointError:  # unreadable: left for training to report (one line) or write over
        return
    if example.trained_as_now(name, method, record.get("config") or {}):
        return
    aside = next(
        path for n in range(1000) if not (path := folder.with_name(f"{folder.name}.superseded{n or ''}")).exists()
    )
    folder.rename(aside)
    print(f"{name}: {folder.relative_to(ROOT)} was trained otherwise; moved to {aside.name}", flush=True)


def make_dynamic_traces(example: Example, name: str, method: str, backbone: Path) -> None:
    """Export ``name`` again in every ``DYNAMIC_FORMS``, from the checkpoint its trace came from, where the export is
    missing or was made with another quantizer or measurement; after its own trace is current (else later)."""
    if not example.current(name, method):
        print(f"{name}: its trace is not made yet; its effective-precision exports wait for it", flush=True)
        return
    if method == "static":
        source = [backbone, "--static-option", name.split("_", 1)[1], "--quantizer", example.quantizer]
    else:
        source = [example.work_folder(name, method) / "joint.pt"]
    for path, options in example.dynamic_traces(name).items():
        if _dynamic_current(example, name, path, options):
            print(f"{name}: {path.relative_to(ROOT)} exists, skipped", flush=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        run([sys.executable, "-m", "dfs_sim.export", *source, *options, "--out", path])


def _dynamic_current(example: Example, name: str, path: Path, options: list[str]) -> bool:
    """Whether an effective-precision export exists, made from the checkpoint of the run's own trace with the
    example's quantizer and the asked measurement (and, per step, on the asked preset's geometry)."""
    if not path.is_file():
        return False
    from dfs_sim.errors import DfsSimError
    from dfs_sim.traces import open_trace

    try:
        meta = open_trace(path).meta
    except DfsSimError:
        return False
    measured = meta.get("effective_precision") or {}
    wanted = "step" if "step" in options else "position"
    preset = options[options.index("--precision-preset") + 1] if "--precision-preset" in options else None
    try:
        source = open_trace(example.trace(name)).meta.get("checkpoint_sha256")
    except DfsSimError:  # the run's own trace is missing or unreadable: made again first
        return False
    return (
        meta.get("quantizer", "dfs_authors") == example.quantizer
        and meta.get("checkpoint_sha256") == source  # from the checkpoint the run's own trace came from
        and measured.get("measurement", "position") == wanted
        and measured.get("preset") == preset
    )


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
        for name, method, _ in runs:
            made = example.trace(name).is_file()
            state = (
                "done"
                if example.current(name, method)
                else "stale (another quantizer or settings)"
                if made
                else "to do"
            )
            print(f"{name}: {state} ({example.trace(name).relative_to(ROOT)})")
        for name in example.dynamic:
            for path, options in example.dynamic_traces(name).items():
                state = "done" if _dynamic_current(example, name, path, options) else "to do"
                print(f"{name} with effective precisions: {state} ({path.relative_to(ROOT)})")
        return 0
    (ROOT / example.out).mkdir(parents=True, exist_ok=True)
    quiet = ["--no-progress"] if args.no_progress else []
    try:
        backbone = train_backbone(example, quiet)
        for name, method, budget in runs:
            if not args.only or name in args.only:
                make_run(example, name, method, budget, backbone, quiet)
        methods = {name: method for name, method, _ in runs}
        for name in example.dynamic:
            if not args.only or name in args.only:
                make_dynamic_traces(example, name, methods[name], backbone)
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
