"""Three-stage DFS / SkipNet training (DESIGN §1): ``train(config)`` and ``python -m dfs_sim.train``.

1. ``backbone``: every gated block at full precision, no gates; SGD over the backbone.
2. ``gate``: backbone weights frozen (BatchNorm statistics and activation ranges still update), the gates trained
   toward full execution (target ``gate_target`` = 100).
3. ``joint``: everything trained with loss = CE + sign·β·Σ mask·cost, sign = +1 while the batch's computation
   percentage is above ``budget`` and −1 at or below it.
SkipNet is the same machinery with its two options. Checkpoints are written every ``checkpoint_every`` iterations
(``last.pt``) and at the end of each stage (``<stage>.pt``); ``resume`` continues one exactly (same iteration,
optimizer state and data-stream RNG state).
"""

from __future__ import annotations

import argparse
import collections
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from dfs_sim.model.checkpoint import CheckpointError, load_checkpoint, plain, save_checkpoint
from dfs_sim.model.data import BatchStream, load_split, num_classes_of
from dfs_sim.errors import ConfigError, DfsSimError
from dfs_sim.model.registry import create_model
from dfs_sim.model.resnet import GatedResNet
from dfs_sim.model.config import (
    STAGES,
    TrainConfig,
    config_from_dict,
    load_train_config,
)

__all__ = ["TrainResult", "build_model", "main", "select_device", "train"]

_WINDOW = 50


@dataclass
class TrainResult:
    config: TrainConfig
    model: GatedResNet
    checkpoints: dict[str, Path] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    stopped_early: bool = False
    last_checkpoint: Path | None = None


def select_device(name: str = "auto") -> torch.device:
    """``auto`` picks the GPU when there is one."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build_model(config: TrainConfig) -> GatedResNet:
    """The model of ``config``, its weights initialized from ``config.seed`` (global RNG left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return create_model(config.model, num_classes=num_classes_of(config.dataset))


def _set_trainable(model: GatedResNet, stage: str) -> list[torch.nn.Parameter]:
    gates = model.gate_parameters()
    backbone = model.backbone_parameters()
    train_backbone = stage in ("backbone", "joint")
    train_gates = stage in ("gate", "joint")
    for p in backbone:
        p.requires_grad_(train_backbone)
    for p in gates:
        p.requires_grad_(train_gates)
    return (backbone if train_backbone else []) + (gates if train_gates else [])


def train(config: TrainConfig, resume: str | Path | None = None, stop_after: int | None = None,
          progress: bool = True) -> TrainResult:
    """Run the configured stages; ``resume`` continues a checkpoint; ``stop_after`` ends after that many iterations
    of this call (a checkpoint is written), for time-limited jobs and for tests."""
    from tqdm.auto import tqdm

    torch.use_deterministic_algorithms(True, warn_only=True)
    state = None
    if resume is not None:
        state = load_checkpoint(resume)
        config = config_from_dict(state["config"], source=f"{resume} (config)")
    device = select_device(config.device)
    split = load_split(config.dataset, "train", config.data_path, config.split_seed)
    model = build_model(config)
    stream = BatchStream(split, config.batch_size, config.seed, config.augment)
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start_stage, start_iteration, optimizer_state = 0, 0, None
    if state is not None:
        model.load_state_dict(state["model"])
        stream.load_state_dict(state["stream"])
        start_stage = STAGES.index(state["stage"])
        start_iteration, optimizer_state = int(state["iteration"]), state.get("optimizer")
    elif config.init_from is not None:
        init = load_checkpoint(config.init_from)
        missing, unexpected = model.load_backbone(init["model"])
        if missing or unexpected:
            raise CheckpointError(config.init_from, f"backbone does not fit {config.model}: missing {missing[:3]}, "
                                                    f"unexpected {unexpected[:3]}")
    model.to(device)
    result = TrainResult(config, model)
    budget_left = stop_after
    for stage_name in config.stages:
        stage_index = STAGES.index(stage_name)
        if stage_index < start_stage:
            continue
        stage = config.stage(stage_name)
        first = start_iteration if stage_index == start_stage else 0
        resume_optimizer = optimizer_state if stage_index == start_stage else None
        if first >= stage.iterations and stage_index == start_stage and state is not None:
            continue  # the resumed checkpoint ended this stage
        params = _set_trainable(model, stage_name)
        optimizer = torch.optim.SGD(params, lr=stage.lr, momentum=stage.momentum, weight_decay=stage.weight_decay)
        if resume_optimizer is not None:
            optimizer.load_state_dict(resume_optimizer)
        fixed_code = model.fp_code if stage_name == "backbone" else None
        target = config.gate_target if stage_name == "gate" else config.budget
        window: collections.deque = collections.deque(maxlen=_WINDOW)
        model.train()

        bar = tqdm(total=stage.iterations, initial=first, desc=f"{config.model} {stage_name}", disable=not progress,
                   dynamic_ncols=True, leave=True)
        iteration = first
        for iteration in range(first, stage.iterations):
            if budget_left is not None and budget_left <= 0:
                result.last_checkpoint = _save(out_dir / "last.pt", config, model, optimizer, stream, stage_name,
                                               iteration, window)
                result.stopped_early = True
                bar.close()
                return result
            for group in optimizer.param_groups:
                group["lr"] = stage.lr_at(iteration)
            images, labels = stream.next()
            images, labels = images.to(device), labels.to(device)
            output = model(images, fixed_code=fixed_code)
            loss = F.cross_entropy(output.logits, labels)
            computation = model.computation_pct(output.masks.detach())
            if stage_name != "backbone":
                sign = 1.0 if float(computation) > target else -1.0
                loss = loss + sign * config.beta * model.computation_cost(output.masks)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            accuracy = (output.logits.detach().argmax(1) == labels).float().mean()
            window.append((float(loss.detach()), float(accuracy) * 100, float(computation)))
            if budget_left is not None:
                budget_left -= 1
            bar.update(1)
            if (iteration + 1) % 10 == 0 or iteration + 1 == stage.iterations:
                summary = _summary(window)
                bar.set_postfix(loss=f"{summary['loss']:.3f}", acc=f"{summary['accuracy']:.1f}%",
                                comp=f"{summary['computation_pct']:.1f}%", lr=f"{stage.lr_at(iteration):g}")
            if (iteration + 1) % config.checkpoint_every == 0 and iteration + 1 < stage.iterations:
                result.last_checkpoint = _save(out_dir / "last.pt", config, model, optimizer, stream, stage_name,
                                               iteration + 1, window)
        bar.close()
        result.checkpoints[stage_name] = _save(out_dir / f"{stage_name}.pt", config, model, optimizer, stream,
                                               stage_name, stage.iterations, window)
        result.last_checkpoint = result.checkpoints[stage_name]
        result.metrics[stage_name] = _summary(window)
    return result


def _save(path: Path, config: TrainConfig, model: GatedResNet, optimizer: torch.optim.Optimizer, stream: BatchStream,
          stage_name: str, iteration: int, window) -> Path:
    return save_checkpoint(
        path, model_name=config.model, num_classes=model.num_classes, model=model.state_dict(),
        optimizer=optimizer.state_dict(), stage=stage_name, iteration=iteration, stream=stream.state_dict(),
        config=plain(config), seed=config.seed, metrics=_summary(window))


def _summary(window: Sequence[tuple[float, float, float]]) -> dict[str, float]:
    if not window:
        return {"loss": float("nan"), "accuracy": float("nan"), "computation_pct": float("nan")}
    count = len(window)
    return {"loss": sum(w[0] for w in window) / count, "accuracy": sum(w[1] for w in window) / count,
            "computation_pct": sum(w[2] for w in window) / count}


# --------------------------------------------------------------------------------------------------------------------
def _parse_set(items: Sequence[str]) -> dict[str, Any]:
    """``--set joint.iterations=300`` → ``{"joint": {"iterations": 300}}``; values are TOML literals."""
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, literal = item.partition("=")
        if not sep or not key:
            raise ConfigError("--set", f"expected KEY=VALUE, got {item!r}")
        try:
            value = tomllib.loads(f"v = {literal}")["v"]
        except tomllib.TOMLDecodeError:
            value = literal  # a bare word: take it as a string
        head, dot, tail = key.partition(".")
        if dot:
            overrides.setdefault(head, {})[tail] = value
        else:
            overrides[key] = value
    return overrides


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dfs_sim.train", description=__doc__.split("\n")[0])
    parser.add_argument("--config", help="TOML training config (defaults: the reference hyper-parameters)")
    parser.add_argument("--model", help="registered model, e.g. dfs_resnet38, skipnet_resnet38")
    parser.add_argument("--dataset", choices=("cifar10", "cifar100", "digits"))
    parser.add_argument("--data-path", help="folder with the CIFAR python batches")
    parser.add_argument("--out-dir", help="where checkpoints go")
    parser.add_argument("--stages", help="comma-separated subset of backbone,gate,joint")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--budget", type=float, help="target computation percentage of the joint stage")
    parser.add_argument("--beta", type=float, help="weight of the computation penalty")
    parser.add_argument("--init-from", help="checkpoint whose backbone initializes the model")
    parser.add_argument("--device", help="auto (GPU when there is one), cpu, cuda[:N]")
    parser.add_argument("--checkpoint-every", type=int)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="any config key, e.g. joint.iterations=300 or backbone.milestones=[100,200]")
    parser.add_argument("--resume", help="continue from this checkpoint (its config is used)")
    parser.add_argument("--stop-after", type=int, help="stop (with a checkpoint) after this many iterations")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = None
        if args.resume is None:
            overrides: dict[str, Any] = {}
            for key in ("model", "dataset", "data_path", "out_dir", "seed", "batch_size", "budget", "beta",
                        "init_from", "device", "checkpoint_every"):
                if getattr(args, key) is not None:
                    overrides[key] = getattr(args, key)
            if args.stages is not None:
                overrides["stages"] = [s.strip() for s in args.stages.split(",") if s.strip()]
            for key, value in _parse_set(args.set).items():
                if isinstance(value, dict):
                    overrides.setdefault(key, {}).update(value)
                else:
                    overrides[key] = value
            if args.config:
                config = load_train_config(args.config, overrides)
            else:
                config = config_from_dict(overrides, source="command line")
        elif args.config or args.set:
            raise ConfigError("--resume", "a resumed run uses its checkpoint's config; drop --config/--set")
        result = train(config if config is not None else TrainConfig(), resume=args.resume,
                       stop_after=args.stop_after, progress=not args.no_progress)
    except DfsSimError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for stage, metrics in result.metrics.items():
        print(f"{stage}: running accuracy {metrics['accuracy']:.1f}%, computation {metrics['computation_pct']:.1f}%, "
              f"checkpoint {result.checkpoints[stage]}")
    if result.stopped_early:
        print(f"stopped early; resume with --resume {result.last_checkpoint}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
