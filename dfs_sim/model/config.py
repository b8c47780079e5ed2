"""The training configuration: frozen dataclasses with the reference hyper-parameters as defaults, loaded from TOML.

Every key can be overridden in a TOML file (top-level keys, and ``[backbone]``, ``[gate]``, ``[joint]`` tables for
DFS's three stages, ``[sp]`` and ``[hrl]`` for SkipNet's two phases) and on the command line. Unknown keys and bad
values raise ``ConfigError`` naming the file and key.

Rules applied while validating:

- A stage whose ``iterations`` is given (in the file or by ``--set``) without its ``milestones`` gets the default
  milestones scaled to the new length: each default milestone × new iterations / default iterations, rounded half up
  to an integer, zeros, duplicates and milestones at or past the end dropped (``joint.iterations = 300`` gives
  ``[150, 225]``). Milestones given explicitly must be increasing and below the stage's ``iterations``.
- ``out_dir`` defaults to ``runs/{dataset}/{model}``, and to ``runs/{dataset}/{model}_b{budget:g}`` when the stages
  include ``joint`` (``runs/cifar10/dfs_resnet74_b50``), so runs of other models or budgets never share a folder;
  ``runs/{dataset}/{model}_a{alpha:g}`` for SkipNet's ``hrl`` phase; the resolved folder is what the saved config
  records.
- DFS models (``dfs_*``, ``dfs_binary_*``) train the stages ``backbone``, ``gate``, ``joint``; SkipNet models
  (``skipnet_*``) train ``backbone``, ``sp`` (supervised) and ``hrl`` (hybrid reinforcement learning), as its
  authors do (docs/skipnet.md).
- ``cost`` is what ``budget`` is measured in: ``"proxy"`` (the paper's (bits/32)², the default) or a table
  ``[cost] preset = "bitfusion_eyeriss"``, ``metric = "energy"`` (or ``"latency"``): that preset's cost of each gated
  block at each option, 100% being every gated block at full precision (``cost_models.budget``).
- The ``gate`` and ``joint`` stages start from a trained backbone: without the ``backbone`` stage they need
  ``init_from``.
- ``device`` must name a device this machine has (``auto``, ``cpu``, ``cuda``, ``cuda:N``; see
  :func:`dfs_sim.model.device.resolve_device`), so a missing GPU is reported before any data is loaded.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cost_models.budget import CostBasis
from dfs_sim._toml import read_toml
from dfs_sim.errors import ConfigError, did_you_mean
from dfs_sim.model.quantize import DEFAULT_QUANTIZER, QUANTIZERS
from dfs_sim.options import Option, parse_options

__all__ = [
    "STAGES",
    "StageConfig",
    "TrainConfig",
    "config_from_dict",
    "default_out_dir",
    "load_train_config",
    "scaled_milestones",
    "validate_train_config",
]

STAGES = ("backbone", "gate", "joint", "sp", "hrl", "qat")
DFS_STAGES = ("backbone", "gate", "joint")
SKIPNET_STAGES = ("backbone", "sp", "hrl")
STATIC_STAGES = ("qat",)  # quantization-aware fine-tuning of a backbone at fixed widths
_MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class StageConfig:
    """SGD for one stage: ``iterations``, learning rate ``lr`` divided by 10 at each of ``milestones``."""

    iterations: int
    lr: float
    milestones: tuple[int, ...] = ()
    momentum: float = 0.9
    weight_decay: float = 1e-4

    def lr_at(self, iteration: int) -> float:
        return self.lr * 0.1 ** sum(iteration >= m for m in self.milestones)


@dataclass(frozen=True)
class TrainConfig:
    """Reference defaults (docs/design.md §1): ResNet-38 on CIFAR-10, batch 128, 64k backbone iterations, 2k gate
    iterations to full execution, then the joint stage toward ``budget`` with β = 1e-5.

    The joint-stage schedule (lr 0.01 for 64k iterations, ÷10 at 32k and 48k) is the defaults of the authors' joint
    training script (docs/departures.md, "Same as the reference").
    """

    model: str = "dfs_resnet38"
    dataset: str = "cifar10"
    data_path: str | None = None
    out_dir: str | None = None  # None: default_out_dir(), filled in by validation
    stages: tuple[str, ...] | None = None  # None: every stage of the model's method (DFS_STAGES or SKIPNET_STAGES)
    seed: int = 0
    split_seed: int = 0
    batch_size: int = 128
    augment: str = "crop_flip"
    budget: float = 50.0
    beta: float = 1e-5
    # the cost term's weight in the gate stage (None: ``beta``); one value for every run keeps the gates' starting
    # point (how saturated at full execution) independent of each run's joint-stage β
    gate_beta: float | None = None
    gate_target: float = 100.0
    cost: CostBasis = field(default_factory=CostBasis)  # what budget and gate_target are measured in
    # the gates' choices by name (skip, fp, qN, wNaM; dfs_sim.options.parse_options); None: the method's own list
    options: tuple[str, ...] | None = None
    # static models (the qat stage): one option for every gated block, or one per gated block (mixed precision)
    static_options: tuple[str, ...] | None = None
    # how weights and activations are quantized (dfs_sim.model.quantize.QUANTIZERS)
    quantizer: str = DEFAULT_QUANTIZER
    # SkipNet's hybrid RL (ucbdrive/skipnet cifar/train_rl.py): reward alpha / gates per skipped block, the REINFORCE
    # term weighted by rl_weight and summed over the batch
    alpha: float = 0.1
    rl_weight: float = 0.01
    checkpoint_every: int = 1000
    init_from: str | None = None
    device: str = "auto"
    # Evaluation on a seeded part of the training data, never the test split; the weights a stage ends with
    validation_fraction: float = 0.1
    eval_every: int = 1000
    keep: str = "last"  # "last" iterate or "best" evaluation (joint: best accuracy within keep_within of the budget)
    # how far (points of computation) a "best" evaluation may miss the stage's target; low budgets need a tighter one
    keep_within: float = 2.0
    # "full_precision": the reference's gate stage; "gated": the all-candidates forward (this project's earlier one)
    gate_stage_forward: str = "full_precision"
    # "auto": bf16 autocast for the full-precision backbone stage on a GPU only; "fp32"; "bf16": autocast everywhere
    # (quantized options above 8 bits then lose their low bits)
    precision: str = "auto"
    deterministic: bool = False  # deterministic algorithms (slower on a GPU; a CPU run is deterministic anyway)
    channels_last: bool = False  # channels_last tensors (faster convolutions; see dfs_sim.model.training)
    backbone: StageConfig = field(default_factory=lambda: StageConfig(64000, 0.1, (32000, 48000)))
    gate: StageConfig = field(default_factory=lambda: StageConfig(2000, 0.01))
    joint: StageConfig = field(default_factory=lambda: StageConfig(64000, 0.01, (32000, 48000)))
    sp: StageConfig = field(default_factory=lambda: StageConfig(64000, 0.1, (32000, 48000)))
    hrl: StageConfig = field(default_factory=lambda: StageConfig(10000, 1e-4))
    qat: StageConfig = field(default_factory=lambda: StageConfig(64000, 0.01, (32000, 48000)))

    def stage(self, name: str) -> StageConfig:
        return getattr(self, name)


def default_out_dir(config: TrainConfig) -> str:
    """``runs/{dataset}/{model}``, with ``_b{budget:g}`` when the stages include ``joint``, ``_a{alpha:g}`` when
    they include ``hrl``."""
    name = config.model
    if "joint" in config.stages:
        name = f"{config.model}_b{config.budget:g}"
    elif "hrl" in config.stages:
        name = f"{config.model}_a{config.alpha:g}"
    elif "qat" in config.stages and config.static_options is not None:
        name = f"{config.model}_qat_{'-'.join(dict.fromkeys(config.static_options))}"
    return str(Path("runs", config.dataset, name))


def _key(key: object) -> str:
    """A key as the error message shows it: as written when printable, else its repr (keeps the message one line)."""
    return key if isinstance(key, str) and key.isprintable() and key else repr(key)


def validate_train_config(config: TrainConfig, source: object = "config") -> TrainConfig:
    """``config`` checked (``ConfigError`` naming ``source`` and the key), with its stages defaulted to what the model
    trains and ``out_dir`` resolved."""

    def bad(key: str, problem: str) -> ConfigError:
        return ConfigError(source, f"{key}: {problem}")

    _check_types(config, source)
    _check_model(config, bad)
    config = _with_stages(config, bad)
    _check_run_settings(config, bad)
    _check_options(config, bad)
    _check_objective(config, bad)
    _check_schedules(config, bad)
    if config.out_dir is None:
        config = dataclasses.replace(config, out_dir=default_out_dir(config))
    return config


def _check_model(config: TrainConfig, bad: Callable[[str, str], ConfigError]) -> None:
    """The model, its static widths, the quantizer and the data."""
    from dfs_sim.model.data import AUGMENTATIONS, DATASETS
    from dfs_sim.model.registry import list_models

    if config.model not in list_models():
        hint = did_you_mean(config.model, list_models())
        raise bad("model", f"unknown model {config.model!r}{hint}; valid: {', '.join(list_models())}")
    static = config.model.startswith("static_")
    if static and config.static_options is None:
        raise bad(
            "static_options",
            'a static model trains only its qat stage, at the widths static_options names (e.g. ["q4"]); for a '
            "post-training baseline export a backbone checkpoint with --static-option",
        )
    if config.static_options is not None:
        if not static:
            raise bad("static_options", f"only static models take static_options, not {config.model}")
        try:
            static_model_options(config.static_options, config.model)
        except ValueError as error:
            raise bad("static_options", str(error)) from None
    if config.quantizer not in QUANTIZERS:
        raise bad("quantizer", f"must be one of {', '.join(QUANTIZERS)}, got {config.quantizer!r}")
    if config.dataset not in DATASETS:
        raise bad("dataset", f"must be one of {DATASETS}, got {config.dataset!r}")
    if config.augment not in AUGMENTATIONS:
        raise bad("augment", f"must be one of {AUGMENTATIONS}, got {config.augment!r}")


def _with_stages(config: TrainConfig, bad: Callable[[str, str], ConfigError]) -> TrainConfig:
    """``config`` with its stages (default: every stage its model trains), checked against what the model trains."""
    static = config.model.startswith("static_")
    allowed = SKIPNET_STAGES if config.model.startswith("skipnet_") else STATIC_STAGES if static else DFS_STAGES
    if config.stages is None:
        config = dataclasses.replace(config, stages=allowed)
    if (
        not config.stages
        or any(s not in STAGES for s in config.stages)
        or list(config.stages) != sorted(set(config.stages), key=STAGES.index)
    ):
        raise bad("stages", f"must be a non-empty ordered subset of {list(STAGES)}, got {list(config.stages)}")
    if any(s not in allowed for s in config.stages):
        raise bad("stages", f"{config.model} trains the stages {list(allowed)}, got {list(config.stages)}")
    if "backbone" not in config.stages and config.init_from is None:
        raise bad(
            "stages",
            f"{'/'.join(s for s in allowed if s != 'backbone')} start from a trained backbone: give init_from "
            f"(--init-from), or include the backbone stage (got {list(config.stages)})",
        )
    return config


def _check_run_settings(config: TrainConfig, bad: Callable[[str, str], ConfigError]) -> None:
    """Paths, device, seeds, evaluation and checkpoint settings."""
    from dfs_sim.model.device import resolve_device

    for key in ("data_path", "init_from", "out_dir"):
        if getattr(config, key) == "":
            raise bad(key, "must be a path, got an empty string")
    try:
        resolve_device(config.device, "device")
    except ConfigError as error:
        raise bad("device", error.problem) from None
    for key in ("seed", "split_seed"):
        if not 0 <= getattr(config, key) <= _MAX_SEED:
            raise bad(key, f"must be in 0..{_MAX_SEED}, got {getattr(config, key)}")
    if not 0 <= config.validation_fraction < 1:
        raise bad("validation_fraction", f"must be in [0, 1), got {config.validation_fraction}")
    if config.eval_every < 1:
        raise bad("eval_every", "must be >= 1")
    if not 0 <= config.keep_within <= 100:
        raise bad("keep_within", f"must be in 0..100 points, got {config.keep_within}")
    for key, valid in (
        ("keep", ("last", "best")),
        ("gate_stage_forward", ("full_precision", "gated")),
        ("precision", ("auto", "fp32", "bf16")),
    ):
        if getattr(config, key) not in valid:
            raise bad(key, f"must be one of {', '.join(valid)}, got {getattr(config, key)!r}")
    if config.batch_size < 1:
        raise bad("batch_size", "must be >= 1")
    if config.checkpoint_every < 1:
        raise bad("checkpoint_every", "must be >= 1")


def _check_options(config: TrainConfig, bad: Callable[[str, str], ConfigError]) -> None:
    """A DFS model's own option list."""
    if config.options is not None:
        try:
            parse_options(list(config.options))
        except ValueError as error:
            raise bad("options", str(error)) from None
        if not config.model.startswith("dfs_"):
            raise bad("options", f"{config.model} has a fixed option list; options are for dfs_* and dfs_binary_*")
        narrowed = [name for name in config.options if "@" in name]
        if narrowed:
            raise bad(
                "options",
                f"{narrowed[0]}: the gated ResNets run every option at full width; dynamic width is priced from "
                "traces written with dfs_sim.traces.new_trace",
            )


def _check_objective(config: TrainConfig, bad: Callable[[str, str], ConfigError]) -> None:
    """What the gates are trained toward: the cost basis, the budget and the penalty weights."""
    try:
        config.cost.check()
    except ConfigError as error:
        raise bad("cost", error.problem) from None
    for key in ("budget", "gate_target"):
        value = getattr(config, key)
        if not 0 <= value <= 100:
            raise bad(key, f"must be a computation percentage in 0..100, got {value}")
    for key in ("beta", "gate_beta", "alpha", "rl_weight"):
        value = getattr(config, key)
        if key == "gate_beta" and value is None:
            continue
        if not (value >= 0 and math.isfinite(value)):
            raise bad(key, f"must be a finite number >= 0, got {value}")


def _check_schedules(config: TrainConfig, bad: Callable[[str, str], ConfigError]) -> None:
    """Every stage's iterations, learning rate, momentum, weight decay and milestones."""
    for name in STAGES:
        stage = config.stage(name)
        if stage.iterations < 0:
            raise bad(f"{name}.iterations", "must be >= 0")
        if not (stage.lr > 0 and math.isfinite(stage.lr)):
            raise bad(f"{name}.lr", f"must be > 0, got {stage.lr}")
        if not 0 <= stage.momentum < 1:
            raise bad(f"{name}.momentum", "must be in [0, 1)")
        if not (stage.weight_decay >= 0 and math.isfinite(stage.weight_decay)):
            raise bad(f"{name}.weight_decay", f"must be a finite number >= 0, got {stage.weight_decay}")
        milestones = list(stage.milestones)
        if milestones != sorted(milestones) or any(m < 1 for m in milestones):
            raise bad(f"{name}.milestones", f"must be increasing positive iterations, got {milestones}")
        if any(m >= stage.iterations for m in milestones):
            raise bad(
                f"{name}.milestones",
                f"{milestones} must be below {name}.iterations ({stage.iterations}): a "
                "milestone at or past the end never lowers the learning rate; set "
                f"{name}.milestones too",
            )


def static_model_options(names: Sequence[str], model: str) -> tuple[tuple[Option, ...], int | tuple[int, ...]]:
    """``(options, codes)`` of a static model from its option names: one name for every gated block, or one per gated
    block; the options are the distinct widths in the order first named, then ``fp`` (which the always-run layers
    use). Raises ``ValueError`` naming the problem."""
    from dfs_sim.model.registry import parse_model_name

    names = [str(name) for name in names]
    if not names:
        raise ValueError("name at least one option")
    if "skip" in names:
        raise ValueError("a static model runs every block; skip is not a static option")
    depth = parse_model_name(model)[1]
    gated = 3 * ((depth - 2) // 6) - 1
    if len(names) not in (1, gated):
        raise ValueError(f"one option for every gated block or one per gated block ({gated}), got {len(names)}")
    distinct = list(dict.fromkeys(name for name in names if name != "fp"))
    options = parse_options([*distinct, "fp"])
    by_name = {option.name: option.code for option in options}
    codes = tuple(by_name[name] for name in names)
    return options, codes[0] if len(codes) == 1 else codes


def scaled_milestones(default: StageConfig, iterations: int) -> tuple[int, ...]:
    """``default``'s milestones scaled to ``iterations`` (rounded half up; zeros, duplicates, ends dropped)."""
    if default.iterations <= 0:
        return ()
    scaled = (math.floor(m * iterations / default.iterations + 0.5) for m in default.milestones)
    return tuple(sorted({m for m in scaled if 0 < m < iterations}))


_TYPES = {
    "model": str,
    "dataset": str,
    "data_path": (str, type(None)),
    "out_dir": (str, type(None)),
    "stages": list,
    "options": (list, type(None)),
    "static_options": (list, type(None)),
    "quantizer": str,
    "seed": int,
    "split_seed": int,
    "batch_size": int,
    "augment": str,
    "budget": (int, float),
    "beta": (int, float),
    "gate_beta": (int, float, type(None)),
    "gate_target": (int, float),
    "alpha": (int, float),
    "rl_weight": (int, float),
    "checkpoint_every": int,
    "init_from": (str, type(None)),
    "device": str,
    "validation_fraction": (int, float),
    "eval_every": int,
    "keep": str,
    "keep_within": (int, float),
    "gate_stage_forward": str,
    "precision": str,
    "deterministic": bool,
    "channels_last": bool,
}
_NAME_LISTS = ("stages", "options", "static_options")
_STAGE_TYPES = {
    "iterations": int,
    "lr": (int, float),
    "milestones": list,
    "momentum": (int, float),
    "weight_decay": (int, float),
}


def _typed(source: object, key: str, value: Any, expected) -> Any:
    if (isinstance(value, bool) and expected is not bool) or not isinstance(value, expected):
        names = expected.__name__ if isinstance(expected, type) else " or ".join(t.__name__ for t in expected)
        raise ConfigError(source, f"{key}: expected {names}, got {value!r}")
    return value


def _check_types(config: TrainConfig, source: object) -> None:
    """The field types of a config built in Python (TOML input is typed as it is read): one ``ConfigError`` naming
    the key, not a ``TypeError`` somewhere later."""
    if not isinstance(config, TrainConfig):
        raise ConfigError(source, f"expected a TrainConfig, got {type(config).__name__}")
    for key, expected in _TYPES.items():
        value = getattr(config, key)
        _typed(source, key, value, (list, tuple, type(None)) if key in _NAME_LISTS else expected)
        if key in _NAME_LISTS and value is not None:
            for item in value:
                _typed(source, key, item, str)
    if not isinstance(config.cost, CostBasis):
        raise ConfigError(source, f"cost: expected a CostBasis, got {type(config.cost).__name__}")
    for name in STAGES:
        stage = config.stage(name)
        if not isinstance(stage, StageConfig):
            raise ConfigError(source, f"{name}: expected a StageConfig, got {type(stage).__name__}")
        for key, expected in _STAGE_TYPES.items():
            value = getattr(stage, key)
            _typed(source, f"{name}.{key}", value, (list, tuple) if key == "milestones" else expected)
            if key == "milestones":
                for milestone in value:
                    _typed(source, f"{name}.milestones", milestone, int)


def config_from_dict(data: dict[str, Any], source: object = "config", base: TrainConfig | None = None) -> TrainConfig:
    """Apply ``data`` (TOML-shaped: stage tables nested) over ``base`` (the defaults) and validate."""
    base = base or TrainConfig()
    updates: dict[str, Any] = {}
    for key, value in data.items():
        if key in STAGES:
            if not isinstance(value, dict):
                raise ConfigError(source, f"{key}: expected a table of stage settings")
            stage_updates = {}
            for stage_key, stage_value in value.items():
                if stage_key not in _STAGE_TYPES:
                    hint = did_you_mean(stage_key, _STAGE_TYPES)
                    raise ConfigError(
                        source, f"{key}.{_key(stage_key)}: unknown key{hint}; valid: {', '.join(_STAGE_TYPES)}"
                    )
                stage_value = _typed(source, f"{key}.{stage_key}", stage_value, _STAGE_TYPES[stage_key])
                if stage_key == "milestones":
                    stage_value = tuple(_typed(source, f"{key}.milestones", m, int) for m in stage_value)
                elif stage_key in ("lr", "momentum", "weight_decay"):
                    stage_value = float(stage_value)
                stage_updates[stage_key] = stage_value
            if "iterations" in stage_updates and "milestones" not in stage_updates:
                stage_updates["milestones"] = scaled_milestones(base.stage(key), stage_updates["iterations"])
            updates[key] = dataclasses.replace(base.stage(key), **stage_updates)
        elif key == "cost":
            updates[key] = _cost_basis(value, source)
        elif key in _TYPES:
            value = _typed(source, key, value, _TYPES[key])
            if key in _NAME_LISTS and value is not None:
                value = tuple(_typed(source, key, item, str) for item in value)
            elif key in ("budget", "beta", "gate_beta", "gate_target", "alpha", "rl_weight", "validation_fraction"):
                value = None if value is None else float(value)
            updates[key] = value
        else:
            valid = [*_TYPES, "cost", *STAGES]
            raise ConfigError(source, f"{_key(key)}: unknown key{did_you_mean(key, valid)}; valid: {', '.join(valid)}")
    return validate_train_config(dataclasses.replace(base, **updates), source)


def _cost_basis(value: Any, source: object) -> CostBasis:
    """``"proxy"``, or a table with ``preset`` (a preset name or TOML path; null: the proxy) and ``metric``."""
    if value == "proxy":
        return CostBasis()
    if not isinstance(value, dict):
        raise ConfigError(source, f'cost: expected "proxy" or a table with preset and metric, got {value!r}')
    unknown = sorted(set(value) - {"preset", "metric"})
    if unknown:
        raise ConfigError(source, f"cost.{_key(unknown[0])}: unknown key; valid: preset, metric")
    preset = _typed(source, "cost.preset", value.get("preset"), (str, type(None)))
    metric = _typed(source, "cost.metric", value.get("metric", "energy"), str)
    return CostBasis(preset, metric)


def load_train_config(path: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read a TOML file, apply ``overrides`` (same shape) and validate."""
    path = Path(path)
    data = read_toml(path)
    for key, value in (overrides or {}).items():
        if key in (*STAGES, "cost") and isinstance(value, dict) and isinstance(data.get(key, {}), dict):
            data.setdefault(key, {}).update(value)  # a table's other keys in the file stay
        else:
            data[key] = value
    return config_from_dict(data, source=path)
