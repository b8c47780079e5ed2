"""The training configuration: frozen dataclasses with the reference hyper-parameters as defaults, loaded from TOML.

Every key can be overridden in a TOML file (top-level keys, and ``[backbone]``, ``[gate]``, ``[joint]`` tables for
the three stages) and on the command line. Unknown keys and bad values raise ``ConfigError`` naming the file and key.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dfs_sim._toml import read_toml
from dfs_sim.errors import ConfigError

__all__ = ["STAGES", "StageConfig", "TrainConfig", "config_from_dict", "load_train_config"]

STAGES = ("backbone", "gate", "joint")


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
    """Reference defaults (DESIGN §1): ResNet-38 on CIFAR-10, batch 128, 64k backbone iterations, 2k gate
    iterations to full execution, then the joint stage toward ``budget`` with β = 1e-5.

    The joint-stage schedule (lr 0.01 for 64k iterations, ÷10 at 32k and 48k) is not stated in DESIGN §1; it is
    this project's choice and can be overridden.
    """

    model: str = "dfs_resnet38"
    dataset: str = "cifar10"
    data_path: str | None = None
    out_dir: str = "runs/dfs_resnet38"
    stages: tuple[str, ...] = STAGES
    seed: int = 0
    split_seed: int = 0
    batch_size: int = 128
    augment: str = "crop_flip"
    budget: float = 50.0
    beta: float = 1e-5
    gate_target: float = 100.0
    checkpoint_every: int = 1000
    init_from: str | None = None
    device: str = "auto"
    backbone: StageConfig = field(default_factory=lambda: StageConfig(64000, 0.1, (32000, 48000)))
    gate: StageConfig = field(default_factory=lambda: StageConfig(2000, 0.01))
    joint: StageConfig = field(default_factory=lambda: StageConfig(64000, 0.01, (32000, 48000)))

    def stage(self, name: str) -> StageConfig:
        return getattr(self, name)


def _check(source: object, config: TrainConfig) -> TrainConfig:
    from dfs_sim.model.data import AUGMENTATIONS, DATASETS
    from dfs_sim.model.registry import list_models

    def bad(key: str, problem: str) -> ConfigError:
        return ConfigError(source, f"{key}: {problem}")

    if config.model not in list_models():
        raise bad("model", f"unknown model {config.model!r}; valid: {', '.join(list_models())}")
    if config.model.startswith("static_"):
        raise bad("model", "static models are not trained; export a backbone checkpoint with --static-option")
    if config.dataset not in DATASETS:
        raise bad("dataset", f"must be one of {DATASETS}, got {config.dataset!r}")
    if config.augment not in AUGMENTATIONS:
        raise bad("augment", f"must be one of {AUGMENTATIONS}, got {config.augment!r}")
    if not config.stages or any(s not in STAGES for s in config.stages) or list(config.stages) != sorted(
            set(config.stages), key=STAGES.index):
        raise bad("stages", f"must be a non-empty ordered subset of {list(STAGES)}, got {list(config.stages)}")
    if config.device not in ("auto", "cpu", "cuda") and not config.device.startswith("cuda:"):
        raise bad("device", f"must be auto, cpu or cuda[:N], got {config.device!r}")
    for key in ("seed", "split_seed"):
        if getattr(config, key) < 0:
            raise bad(key, "must be >= 0")
    if config.batch_size < 1:
        raise bad("batch_size", "must be >= 1")
    if config.checkpoint_every < 1:
        raise bad("checkpoint_every", "must be >= 1")
    for key in ("budget", "gate_target"):
        value = getattr(config, key)
        if not 0 <= value <= 100:
            raise bad(key, f"must be a computation percentage in 0..100, got {value}")
    if not (config.beta >= 0 and math.isfinite(config.beta)):
        raise bad("beta", f"must be a finite number >= 0, got {config.beta}")
    for name in STAGES:
        stage = config.stage(name)
        if stage.iterations < 0:
            raise bad(f"{name}.iterations", "must be >= 0")
        if not (stage.lr > 0 and math.isfinite(stage.lr)):
            raise bad(f"{name}.lr", f"must be > 0, got {stage.lr}")
        if not 0 <= stage.momentum < 1:
            raise bad(f"{name}.momentum", "must be in [0, 1)")
        if stage.weight_decay < 0:
            raise bad(f"{name}.weight_decay", "must be >= 0")
        if list(stage.milestones) != sorted(stage.milestones) or any(m < 1 for m in stage.milestones):
            raise bad(f"{name}.milestones", "must be increasing positive iterations")
    return config


_TYPES = {
    "model": str, "dataset": str, "data_path": (str, type(None)), "out_dir": str, "stages": list, "seed": int,
    "split_seed": int, "batch_size": int, "augment": str, "budget": (int, float), "beta": (int, float),
    "gate_target": (int, float), "checkpoint_every": int, "init_from": (str, type(None)), "device": str,
}
_STAGE_TYPES = {"iterations": int, "lr": (int, float), "milestones": list, "momentum": (int, float),
                "weight_decay": (int, float)}


def _typed(source: object, key: str, value: Any, expected) -> Any:
    if isinstance(value, bool) or not isinstance(value, expected):
        names = expected.__name__ if isinstance(expected, type) else " or ".join(t.__name__ for t in expected)
        raise ConfigError(source, f"{key}: expected {names}, got {value!r}")
    return value


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
                    raise ConfigError(source, f"{key}.{stage_key}: unknown key; valid: {', '.join(_STAGE_TYPES)}")
                stage_value = _typed(source, f"{key}.{stage_key}", stage_value, _STAGE_TYPES[stage_key])
                if stage_key == "milestones":
                    stage_value = tuple(_typed(source, f"{key}.milestones", m, int) for m in stage_value)
                elif stage_key in ("lr", "momentum", "weight_decay"):
                    stage_value = float(stage_value)
                stage_updates[stage_key] = stage_value
            updates[key] = dataclasses.replace(base.stage(key), **stage_updates)
        elif key in _TYPES:
            value = _typed(source, key, value, _TYPES[key])
            if key == "stages":
                value = tuple(_typed(source, "stages", s, str) for s in value)
            elif key in ("budget", "beta", "gate_target"):
                value = float(value)
            updates[key] = value
        else:
            raise ConfigError(source, f"{key}: unknown key; valid: {', '.join([*_TYPES, *STAGES])}")
    return _check(source, dataclasses.replace(base, **updates))


def load_train_config(path: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read a TOML file, apply ``overrides`` (same shape) and validate."""
    path = Path(path)
    data = read_toml(path)
    for key, value in (overrides or {}).items():
        if key in STAGES and isinstance(value, dict):
            data.setdefault(key, {}).update(value)
        else:
            data[key] = value
    return config_from_dict(data, source=path)
