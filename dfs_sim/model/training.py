"""DFS and SkipNet training (docs/design.md §1, docs/skipnet.md): ``train(config)`` and ``python -m dfs_sim.train``.

1. ``backbone``: every gated block at full precision, no gates; SGD over the backbone.
2. ``gate``: as the reference trains it, the backbone frozen and run at full precision only (BatchNorm statistics
   follow full-precision activations; activation ranges are untouched), the gates trained by the cost term alone
   toward full execution (target ``gate_target`` = 100, weight ``gate_beta``, default β).
   ``gate_stage_forward = "gated"`` keeps this project's earlier variant (the all-candidates forward, so
   cross-entropy reaches the gates too).
3. ``joint``: everything trained with loss = CE + sign·β·Σ mask·cost, sign = +1 while the batch's computation
   percentage is above ``budget`` and −1 at or below it. The cost is the paper's proxy, or with ``[cost]`` a preset's
   energy or latency of each gated block and option (``cost_models.budget``), and "computation" in the logs and
   metrics is the percentage on that basis.
The binary-option ablation of DFS (``dfs_binary_*``) is the same machinery with SkipNet's two options. SkipNet
(``skipnet_*``) trains as its authors do, after the same backbone stage:
4. ``sp``: supervised, everything trained with cross-entropy alone, the gates thresholded at 0.5 (straight-through);
5. ``hrl``: hybrid reinforcement learning, everything trained with cross-entropy plus REINFORCE on Bernoulli-sampled
   decisions (``skipnet_reinforce_loss``: reward ``alpha`` / gates per skipped block, minus the input's cross-entropy
   at the end, rewards-to-go, weight ``rl_weight`` summed over the batch).
A seeded validation split is carved from the training data
(``validation_fraction``; the test split is never looked at) and evaluated every ``eval_every`` iterations and at the
end of each stage; ``keep`` says which weights a stage ends with: its ``last`` iterate or its ``best`` evaluation.
Checkpoints are written every ``checkpoint_every`` iterations (``last.pt``) and at the end of each stage
(``<stage>.pt``); ``resume`` continues one exactly (same iteration, optimizer state and data-stream RNG state).

Speed (``python -m benchmarks`` measures it against the plain path): the fast training forward
(``GatedResNet.forward_candidates``), the reference's cheap gate stage, no read-back to the host inside the forward
on a GPU, bf16 autocast for the full-precision backbone stage on a GPU (``precision``), channels_last tensors when
``channels_last = true``, and pinned, non-blocking
copies of the batches. Under ``torchrun`` every process takes its share of each global batch (``batch_size`` is the
global batch), BatchNorm and the activation ranges use the statistics of the global batch, and gradients are averaged
with DistributedDataParallel, so N processes train what one process would.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from cost_models.budget import CostBasis, budget_costs
from dfs_sim.errors import ConfigError, DfsSimError, report_bad_input
from dfs_sim.model.checkpoint import (
    CheckpointError,
    check_writable_folder,
    load_backbone_into,
    load_checkpoint,
    load_weights_into,
    plain,
    save_checkpoint,
)
from dfs_sim.model.config import (
    STAGES,
    TrainConfig,
    config_from_dict,
    load_train_config,
    static_model_options,
    validate_train_config,
)
from dfs_sim.model.data import DATASETS, GEOMETRY, BatchStream, Split, load_split, split_validation
from dfs_sim.model.device import resolve_device
from dfs_sim.model.distributed import Distributed, is_multiprocess
from dfs_sim.model.infer import calibrate_quantizers, evaluate
from dfs_sim.model.quantize import LEGACY_QUANTIZER
from dfs_sim.model.registry import create_model, list_models
from dfs_sim.model.resnet import GatedResNet, declared_layer_table
from dfs_sim.options import parse_options

__all__ = ["TrainResult", "build_model", "main", "skipnet_reinforce_loss", "train"]

_LOG_EVERY = 10


@dataclass
class TrainResult:
    config: TrainConfig
    model: GatedResNet
    checkpoints: dict[str, Path] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    stopped_early: bool = False
    last_checkpoint: Path | None = None


def build_model(config: TrainConfig) -> GatedResNet:
    """The model of ``config``, its weights initialized from ``config.seed`` (global RNG left untouched), its budget
    measured on ``config.cost``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        geometry = GEOMETRY[config.dataset]
        options: dict = {} if config.options is None else {"options": parse_options(list(config.options))}
        if config.static_options is not None:
            static_options, codes = static_model_options(config.static_options, config.model)
            options = {"options": static_options, "option": codes}
        model = create_model(
            config.model,
            num_classes=geometry.num_classes,
            in_channels=geometry.channels,
            quantizer=config.quantizer,
            **options,
        )
    apply_cost_basis(model, config.cost, geometry.size)
    return model


def apply_cost_basis(model: GatedResNet, basis: CostBasis, input_size: int) -> None:
    """Measure ``model``'s budget on ``basis``: the preset's cost of each gated block at each option, from the
    model's own layer table (the proxy needs nothing). The basis is kept as ``model.cost_basis``."""
    model.cost_basis = basis
    if basis.preset is None or model.num_gated == 0:
        return
    model.set_budget_costs(budget_costs(declared_layer_table(model, input_size), model.options, basis))


def _set_trainable(model: GatedResNet, stage: str) -> list[torch.nn.Parameter]:
    gates = model.gate_parameters()
    backbone = model.backbone_parameters()
    train_backbone = stage in ("backbone", "joint", "sp", "hrl", "qat")
    train_gates = stage in ("gate", "joint", "sp", "hrl")
    for p in backbone:
        p.requires_grad_(train_backbone)
    for p in gates:
        p.requires_grad_(train_gates)
    return (backbone if train_backbone else []) + (gates if train_gates else [])


def skipnet_reinforce_loss(
    masks: torch.Tensor, probs: torch.Tensor, cross_entropy: torch.Tensor, alpha: float, skip_code: int = 0
) -> torch.Tensor:
    """SkipNet's REINFORCE term (``ucbdrive/skipnet`` ``cifar/train_rl.py``), before its weight: ``−Σ_n Σ_b R_nb ·
    log π(a_nb)``.

    ``masks`` (N × B × options, one-hot) are the sampled decisions, ``probs`` the gate's probabilities of each
    option, ``cross_entropy`` (N) each input's loss. Each skipped block earns ``alpha / B``; the input's
    ``−cross_entropy`` is the terminal reward; ``R_nb`` is the reward-to-go from block b (no discount), with no
    baseline and no normalisation, as in the authors' code. Only the log-probabilities carry gradient."""
    taken = masks.detach()
    blocks = taken.shape[1]
    skip_reward = alpha / blocks * taken[:, :, skip_code]
    to_go = skip_reward.flip(1).cumsum(1).flip(1) - cross_entropy.detach().unsqueeze(1)
    log_prob = (taken * probs).sum(2).clamp_min(1e-12).log()
    return -(to_go * log_prob).sum()


def _load_init(config: TrainConfig, model: GatedResNet) -> None:
    """The backbone of ``config.init_from`` into ``model``; a checkpoint of another depth is a one-line error.

    A SkipNet checkpoint of the supervised phase (``sp``) initialises a SkipNet model whole, gates included: its
    authors start every reinforcement-learning run from one such checkpoint."""
    record = load_checkpoint(config.init_from)
    if record["stage"] == "sp" and record["model_name"] == config.model:
        load_weights_into(model, record, config.init_from, config.model)
    else:
        load_backbone_into(model, record, config.init_from, config.model)


def _autocast(device: torch.device, config: TrainConfig, stage: str):
    """bf16 autocast where it is safe and asked for: quantized options above 8 bits are not representable in bf16,
    so ``auto`` uses it only for the full-precision backbone stage, and only on a GPU."""
    wanted = config.precision == "bf16" or (
        config.precision == "auto" and stage == "backbone" and device.type == "cuda"
    )
    if not wanted:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def _configure_backends(device: torch.device, config: TrainConfig) -> None:
    if config.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    if device.type == "cuda":
        # TF32 keeps 10 mantissa bits: 12- to 16-bit quantized operands would silently lose their low bits
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = not config.deterministic
        torch.backends.cudnn.deterministic = config.deterministic


def _validation_split(config: TrainConfig, train_split: Split) -> tuple[Split, Split | None]:
    """``(training part, validation part)``: a seeded ``validation_fraction`` of the training split held out."""
    return split_validation(train_split, config.validation_fraction, config.split_seed)


def _score(stage: str, config: TrainConfig, accuracy: float, computation: float) -> tuple[float, float]:
    """What ``keep = "best"`` maximises: accuracy, among evaluations within ``keep_within`` points of the stage's
    target when the stage has one (gate: ``gate_target``; joint: ``budget``), else the nearest to the target first.
    SkipNet's phases have no target: its authors keep the most accurate evaluation."""
    if stage in ("backbone", "sp", "hrl", "qat"):
        return (0.0, accuracy)
    target = config.gate_target if stage == "gate" else config.budget
    return (-max(abs(computation - target) - config.keep_within, 0.0), accuracy)


def _budget_missed(stage: str, config: TrainConfig, computation: float) -> str:
    """What to say when a joint stage ends with no evaluation within ``keep_within`` of its budget (empty: nothing):
    its gates did not reach the budget, and its trace will say so only through its realised computation."""
    if stage != "joint" or config.budget is None or abs(computation - config.budget) <= config.keep_within:
        return ""
    return (
        f"the kept evaluation's computation {computation:.1f}% is {abs(computation - config.budget):.1f} points from "
        f"the budget {config.budget:g}% (keep_within {config.keep_within:g}): no evaluation reached it"
    )


def train(
    config: TrainConfig,
    resume: str | Path | None = None,
    stop_after: int | None = None,
    progress: bool = True,
    resume_overrides: dict[str, Any] | None = None,
) -> TrainResult:
    """Run the configured stages; ``resume`` continues a checkpoint (with its config; ``resume_overrides`` may change
    ``device`` and ``data_path``, for a run moved to another machine); ``stop_after`` ends after that many iterations
    of this call (a checkpoint is written), for time-limited jobs and for tests.

    Everything that can be checked is checked before the data is loaded, and nothing is written before the first
    checkpoint."""
    state = None
    if resume is not None:
        state = load_checkpoint(resume)
        overrides = dict(resume_overrides or {})
        if set(overrides) - {"device", "data_path"}:
            raise ConfigError("resume_overrides", f"only device and data_path may change, got {sorted(overrides)}")
        saved = {"quantizer": LEGACY_QUANTIZER, **state["config"]}  # runs from before the choice: the authors' one
        config = config_from_dict({**saved, **overrides}, source=f"{resume} (config)")
    else:
        config = validate_train_config(config)
    check_writable_folder(config.out_dir, "out_dir")
    dist = Distributed.from_environment()
    device = resolve_device(config.device, "device")
    if device.type == "cuda" and dist.active:
        device = torch.device("cuda", dist.local_rank)
    if config.batch_size % dist.world_size:
        raise ConfigError(
            "batch_size", f"the global batch {config.batch_size} does not split evenly over {dist.world_size} processes"
        )
    model = build_model(config)
    if state is not None:
        load_weights_into(model, state, resume, config.model)
    elif config.init_from is not None:
        _load_init(config, model)
    try:
        dist.start(device)
        if dist.active and dist.is_main:
            print(
                f"{dist.world_size} processes on {device.type}: global batch {config.batch_size}, "
                f"{config.batch_size // dist.world_size} per process",
                flush=True,
            )
        return _train(config, model, state, resume, dist, device, stop_after, progress and dist.is_main)
    finally:
        dist.stop()


def _train(
    config: TrainConfig,
    model: GatedResNet,
    state: dict | None,
    state_source: str | Path | None,
    dist: Distributed,
    device: torch.device,
    stop_after: int | None,
    progress: bool,
) -> TrainResult:
    """Every configured stage in turn, from where ``state`` (a checkpoint) left off."""
    _configure_backends(device, config)
    split, validation = _validation_split(
        config, load_split(config.dataset, "train", config.data_path, config.split_seed)
    )
    stream = BatchStream(split, config.batch_size, config.seed, config.augment)
    resume = _resume_point(state, stream, state_source)
    # channels_last convolutions are 1.2-1.5x faster here, but a channels_last run of train() drifted from the
    # contiguous one by ~2% of an update after one step, although one forward/backward and one SGD step agree to
    # 1e-7 in isolation: an opt-in until that is understood (not under torchrun: kept exact there)
    layout = torch.channels_last if config.channels_last and not dist.active else torch.contiguous_format
    model.to(device=device, memory_format=layout)
    result = TrainResult(config, model)
    context = _Context(config, model, split, validation, stream, dist, device, layout, progress)
    iterations_left = stop_after  # of this call (a time-limited job), over every stage
    for stage_name in config.stages:
        stage_index = STAGES.index(stage_name)
        if stage_index < resume.stage:
            continue
        here = resume if stage_index == resume.stage else _Resume(stage_index)
        if state is not None and stage_index == resume.stage and here.iteration >= config.stage(stage_name).iterations:
            continue  # the resumed checkpoint ended this stage
        stage = _Stage(context, stage_name, here, state_source)
        iterations_left = stage.run(result, iterations_left)
        if result.stopped_early:
            return result
        stage.finish(result)
    return result


@dataclass
class _Resume:
    """Where training starts: the stage (its index in ``STAGES``), the iteration in it, its optimizer state and the
    best evaluation kept so far (a fresh start: stage 0, nothing)."""

    stage: int = 0
    iteration: int = 0
    optimizer: dict | None = None
    best: dict | None = None


def _resume_point(state: dict | None, stream: BatchStream, source: str | Path | None) -> _Resume:
    """The resume point of a checkpoint's ``state`` (None: a fresh start); the batch stream continues where it was."""
    if state is None:
        return _Resume()
    try:
        stream.load_state_dict(state.get("stream"))
    except (ValueError, AttributeError) as error:
        raise CheckpointError(source, f"stream: {error} (was the data changed?)") from None
    return _Resume(STAGES.index(state["stage"]), int(state["iteration"]), state.get("optimizer"), state.get("best"))


@dataclass(frozen=True)
class _Context:
    """What every stage of one training run shares."""

    config: TrainConfig
    model: GatedResNet
    split: Split
    validation: Split | None
    stream: BatchStream
    dist: Distributed
    device: torch.device
    layout: torch.memory_format
    progress: bool


class _Stage:
    """One stage of training: its optimizer, its loop of SGD steps, and what it logs, evaluates, keeps and saves."""

    def __init__(self, context: _Context, name: str, resume: _Resume, source: str | Path | None) -> None:
        config, model = context.config, context.model
        self.context, self.name = context, name
        self.stage = config.stage(name)
        self.first, self.best = resume.iteration, resume.best
        self.out_dir = Path(config.out_dir)
        if self.first == 0 and name in ("joint", "qat") and config.quantizer != LEGACY_QUANTIZER:
            # the standard quantizers start from ranges (and clips) calibrated on the training data; the authors'
            # one starts from the first batch's range
            calibrate_quantizers(model, context.split)
        self.params = _set_trainable(model, name)
        stage = self.stage
        self.optimizer = torch.optim.SGD(
            self.params, lr=stage.lr, momentum=stage.momentum, weight_decay=stage.weight_decay
        )
        if resume.optimizer is not None:
            try:
                self.optimizer.load_state_dict(resume.optimizer)
            except (KeyError, TypeError, ValueError) as error:
                raise CheckpointError(source, f"optimizer: not this stage's optimizer state ({error})") from None
        self.runner = context.dist.wrap(model)
        self.target = config.gate_target if name == "gate" else config.budget
        self.beta = config.gate_beta if name == "gate" and config.gate_beta is not None else config.beta
        self.totals = torch.zeros(3, device=context.device)  # loss, correct fraction, computation; summed until shown
        self.window_start = self.first  # the first iteration summed in totals
        self.shown: dict[str, float] = {}
        self.scores: dict[str, float] = {}

    def run(self, result: TrainResult, iterations_left: int | None) -> int | None:
        """The stage's iterations from its first; stops early (``result.stopped_early``, a checkpoint written) when
        ``iterations_left`` runs out. Returns what is left of it."""
        from tqdm.auto import tqdm

        context, stage = self.context, self.stage
        context.model.train()
        bar = tqdm(
            total=stage.iterations,
            initial=self.first,
            desc=f"{context.config.model} {self.name}",
            disable=not context.progress,
            dynamic_ncols=True,
            leave=True,
        )
        for iteration in range(self.first, stage.iterations):
            if iterations_left is not None and iterations_left <= 0:
                result.last_checkpoint = self._save_last(iteration)
                result.stopped_early = True
                bar.close()
                return iterations_left
            self._step(iteration)
            if iterations_left is not None:
                iterations_left -= 1
            bar.update(1)
            self._after_step(iteration + 1, stage.lr_at(iteration), bar, result)
        bar.close()
        return iterations_left

    def _step(self, iteration: int) -> None:
        """One SGD step on the next batch; its loss, accuracy and computation are added to the running totals."""
        context, config, model = self.context, self.context.config, self.context.model
        dist, device = context.dist, context.device
        for group in self.optimizer.param_groups:
            group["lr"] = self.stage.lr_at(iteration)
        images, labels = context.stream.next()
        images, labels = dist.share(images), dist.share(labels)
        if device.type == "cuda":
            images, labels = images.pin_memory(), labels.pin_memory()
        images = images.to(device, non_blocking=True).contiguous(memory_format=context.layout)
        labels = labels.to(device, non_blocking=True)
        with _autocast(device, config, self.name):
            output = self.runner(images, **_forward_options(self.name, config, model, device))
            per_input = F.cross_entropy(output.logits.float(), labels, reduction="none")
            loss = per_input.mean()
        masks = output.masks
        computation = dist.mean(model.computation_pct(masks.detach()))
        if self.name == "hrl":
            # summed over this process's share of the batch; DDP averages gradients, hence × processes
            loss = loss + config.rl_weight * dist.world_size * skipnet_reinforce_loss(
                masks, output.probs, per_input, config.alpha, skip_code=model.skip_code
            )
        elif self.name in ("gate", "joint"):
            # sign·β without reading the percentage back to the host; DDP averages gradients over processes,
            # so the summed cost of this process's share is scaled to the global batch's
            scale = torch.where(computation > self.target, self.beta, -self.beta) * dist.world_size
            loss = loss + scale * model.computation_cost(masks.float())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for parameter in self.params:
            # a block every input of the batch skipped ran under no_grad on this path: give its weights the zero
            # gradient the all-candidates reference gives them, so weight decay and momentum still apply
            if parameter.grad is None:
                parameter.grad = torch.zeros_like(parameter)
        self.optimizer.step()
        correct = (output.logits.detach().argmax(1) == labels).float().mean()
        self.totals += torch.stack([loss.detach().float(), correct, computation.float()])

    def _after_step(self, done: int, lr: float, bar, result: TrainResult) -> None:
        """What follows step ``done``: the running means shown, an evaluation (and the best one kept), a checkpoint,
        and without a bar one log line per evaluation or checkpoint."""
        config, stage = self.context.config, self.stage
        if done % _LOG_EVERY == 0 or done == stage.iterations:
            mean = (self.totals / (done - self.window_start)).tolist()
            self.totals.zero_()
            self.window_start = done
            self.shown.update(loss=mean[0], accuracy=mean[1] * 100, computation_pct=mean[2])
            bar.set_postfix(_postfix(self.shown, lr))
        evaluated = self.context.validation is not None and (done % config.eval_every == 0 or done == stage.iterations)
        if evaluated:
            self._evaluate(done)
            bar.set_postfix(_postfix(self.shown, lr))
        if done % config.checkpoint_every == 0 and done < stage.iterations:
            result.last_checkpoint = self._save_last(done)
        if (
            not self.context.progress
            and self.context.dist.is_main
            and (evaluated or done % config.checkpoint_every == 0)
        ):
            # without the bar (a log file), one line per evaluation or checkpoint shows the run is alive
            line = " ".join(f"{k} {v}" for k, v in _postfix(self.shown, lr).items())
            print(f"{config.model} {self.name} {done}/{stage.iterations}: {line}", flush=True)

    def _evaluate(self, done: int) -> None:
        """Evaluate on the validation split; keep the weights when the evaluation scores best (``_score``)."""
        context = self.context
        assert context.validation is not None
        self.scores = _evaluate(context.model, context.validation, self.name, context.config)
        self.shown.update(val_accuracy=self.scores["accuracy"], val_computation_pct=self.scores["computation_pct"])
        score = _score(self.name, context.config, self.scores["accuracy"], self.scores["computation_pct"])
        if self.best is None or score > tuple(self.best["score"]):
            self.best = {
                "score": list(score),
                "iteration": done,
                "metrics": self.scores,
                "model": {k: v.detach().to("cpu", copy=True) for k, v in context.model.state_dict().items()},
            }

    def _save_last(self, iteration: int) -> Path:
        context = self.context
        return _save(
            self.out_dir / "last.pt",
            context.config,
            context.model,
            self.optimizer,
            context.stream,
            self.name,
            iteration,
            self.shown,
            self.best,
            context.dist,
        )

    def finish(self, result: TrainResult) -> None:
        """The weights the stage ends with (``keep``), its metrics, and its checkpoint ``<stage>.pt``."""
        context = self.context
        metrics = {"training_" + k: v for k, v in self.shown.items() if not k.startswith("val_")}
        if context.config.keep == "best" and self.best is not None:
            context.model.load_state_dict(self.best["model"])
            metrics.update(self.best["metrics"], kept_iteration=self.best["iteration"])
        elif context.validation is not None:  # the loop evaluated the last iterate
            metrics.update(self.scores, kept_iteration=self.stage.iterations)
        result.checkpoints[self.name] = _save(
            self.out_dir / f"{self.name}.pt",
            context.config,
            context.model,
            self.optimizer,
            context.stream,
            self.name,
            self.stage.iterations,
            metrics,
            None,
            context.dist,
        )
        result.last_checkpoint = result.checkpoints[self.name]
        result.metrics[self.name] = metrics


def _forward_options(stage: str, config: TrainConfig, model: GatedResNet, device: torch.device) -> dict:
    if stage == "backbone":
        return {"fixed_code": model.fp_code}
    if stage == "gate" and config.gate_stage_forward == "full_precision":
        return {"gate_stage": True}
    if stage == "hrl":
        return {"sync_free": device.type == "cuda" or is_multiprocess(), "sample_gates": True}
    # A read-back of the chosen options per block would stall a GPU (on a CPU it is free and saves the backward of
    # unchosen candidates); several processes must put the same candidates in their graphs, or their BatchNorm
    # all-reduces in the backward would not pair up
    return {"sync_free": device.type == "cuda" or is_multiprocess()}


def _postfix(shown: dict[str, float], lr: float) -> dict[str, str]:
    names = {
        "loss": ("loss", "{:.3f}"),
        "accuracy": ("acc", "{:.1f}%"),
        "computation_pct": ("comp", "{:.1f}%"),
        "val_accuracy": ("val_acc", "{:.1f}%"),
        "val_computation_pct": ("val_comp", "{:.1f}%"),
    }
    out = {label: form.format(shown[key]) for key, (label, form) in names.items() if key in shown}
    out["lr"] = f"{lr:g}"
    return out


def _evaluate(model: GatedResNet, split: Split, stage: str, config: TrainConfig) -> dict[str, float]:
    """Accuracy and computation (percent) of ``split`` as the stage trains the model; every process evaluates the same
    split, so no result needs to be shared.

    The joint stage (and a ``gated`` gate stage) is evaluated as exported: eval mode, each input at its chosen options.
    The backbone stage runs at full precision. The reference's gate stage trains the gates on a full-precision
    forward, so its quantizers have seen nothing yet: its accuracy is the full-precision one, and its computation is
    what the gates choose."""
    fp = model.fp_code
    if stage == "backbone":
        evaluation = evaluate(model, split, fixed_code=fp)
        return {"accuracy": evaluation.accuracy * 100, "computation_pct": evaluation.budget_pct}
    evaluation = evaluate(model, split)
    accuracy = evaluation.accuracy
    if stage == "gate" and config.gate_stage_forward == "full_precision":
        accuracy = evaluate(model, split, fixed_code=fp).accuracy
    return {"accuracy": accuracy * 100, "computation_pct": evaluation.budget_pct}


def _save(
    path: Path,
    config: TrainConfig,
    model: GatedResNet,
    optimizer: torch.optim.Optimizer,
    stream: BatchStream,
    stage_name: str,
    iteration: int,
    metrics: dict,
    best: dict | None,
    dist: Distributed,
) -> Path:
    if dist.is_main:
        contiguous = {k: v.contiguous() for k, v in model.state_dict().items()}  # the file does not record layouts
        save_checkpoint(
            path,
            model_name=config.model,
            num_classes=model.num_classes,
            model=contiguous,
            optimizer=optimizer.state_dict(),
            stage=stage_name,
            iteration=iteration,
            stream=stream.state_dict(),
            config=plain(config),
            seed=config.seed,
            metrics=dict(metrics),
            best=best,
            world_size=dist.world_size,
        )
    dist.barrier()
    return path


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
            table = overrides.setdefault(head, {})
            if not isinstance(table, dict):
                raise ConfigError("--set", f"{head} was set to a value; {key} cannot set a key inside it")
            table[tail] = value
        else:
            overrides[key] = value
    return overrides


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dfs_sim.train", description=__doc__.split("\n")[0])
    parser.add_argument("--config", help="TOML training config (defaults: the reference hyper-parameters)")
    parser.add_argument("--model", help=f"a registered model: {', '.join(list_models())}")
    parser.add_argument("--dataset", choices=DATASETS)
    parser.add_argument(
        "--data-path",
        help="data folder: the CIFAR python batches, or the MNIST / Fashion-MNIST IDX "
        "files (default for those: the Debian package's folder)",
    )
    parser.add_argument("--out-dir", help="where checkpoints go")
    parser.add_argument(
        "--stages", help="comma-separated subset of backbone,gate,joint (DFS) or backbone,sp,hrl (SkipNet)"
    )
    parser.add_argument("--seed", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--budget", type=float, help="target computation percentage of the joint stage")
    parser.add_argument("--beta", type=float, help="weight of the computation penalty (DFS)")
    parser.add_argument("--alpha", type=float, help="SkipNet's reward per skipped block (hrl phase)")
    parser.add_argument("--init-from", help="checkpoint whose backbone initializes the model")
    parser.add_argument("--device", help="auto (GPU when there is one), cpu, cuda[:N]")
    parser.add_argument("--checkpoint-every", type=int)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any config key, e.g. joint.iterations=300 or backbone.milestones=[100,200]",
    )
    parser.add_argument(
        "--resume", help="continue from this checkpoint (its config is used; only --device and --data-path may change)"
    )
    parser.add_argument("--stop-after", type=int, help="stop (with a checkpoint) after this many iterations")
    parser.add_argument("--no-progress", action="store_true")
    return parser


# command-line options a resumed run may not change (its checkpoint's config is the run's config)
_RESUME_FIXED = (
    "config",
    "set",
    "model",
    "dataset",
    "out_dir",
    "stages",
    "seed",
    "batch_size",
    "budget",
    "beta",
    "alpha",
    "init_from",
    "checkpoint_every",
)


def _blame_the_flag(error: ConfigError, flags: set[str], settings: set[str]) -> ConfigError:
    """``error`` about a key whose value came from a command-line flag, named by that flag (``--budget``,
    ``--set joint.iterations``) rather than by the config file that did not set it."""
    key, separator, problem = error.problem.partition(": ")
    top = key.split(".")[0]
    if not separator:
        return error
    if top in flags:
        return ConfigError(f"--{top.replace('_', '-')}", problem)
    if top in settings:
        return ConfigError(f"--set {key}", problem)
    return error


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = None
        if args.resume is None:
            overrides: dict[str, Any] = {}
            for key in (
                "model",
                "dataset",
                "data_path",
                "out_dir",
                "seed",
                "batch_size",
                "budget",
                "beta",
                "alpha",
                "init_from",
                "device",
                "checkpoint_every",
            ):
                if getattr(args, key) is not None:
                    overrides[key] = getattr(args, key)
            if args.stages is not None:
                overrides["stages"] = [s.strip() for s in args.stages.split(",") if s.strip()]
            for key, value in _parse_set(args.set).items():
                if isinstance(value, dict):
                    if not isinstance(overrides.setdefault(key, {}), dict):
                        raise ConfigError("--set", f"{key} is not a table of settings; {key}.KEY=VALUE cannot set it")
                    overrides[key].update(value)
                else:
                    overrides[key] = value
            flags = {key for key in overrides if key not in _parse_set(args.set)}
            try:
                if args.config:
                    config = load_train_config(args.config, overrides)
                else:
                    config = config_from_dict(overrides, source="command line")
            except ConfigError as error:
                raise _blame_the_flag(error, flags, set(_parse_set(args.set))) from None
        else:
            fixed = [f"--{key.replace('_', '-')}" for key in _RESUME_FIXED if getattr(args, key) not in (None, [])]
            if fixed:
                raise ConfigError(
                    "--resume",
                    f"a resumed run keeps its checkpoint's config; drop {', '.join(fixed)} (only --device and "
                    "--data-path may change, for a run moved to another machine)",
                )
        result = train(
            config if config is not None else TrainConfig(),
            resume=args.resume,
            resume_overrides={key: getattr(args, key) for key in ("device", "data_path") if getattr(args, key)},
            stop_after=args.stop_after,
            progress=not args.no_progress,
        )
    except DfsSimError as error:
        return report_bad_input(error)
    if not Distributed.from_environment().is_main:
        return 0
    for stage, metrics in result.metrics.items():
        if "accuracy" in metrics:
            print(
                f"{stage}: validation accuracy {metrics['accuracy']:.2f}%, computation "
                f"{metrics['computation_pct']:.1f}% (iteration {metrics['kept_iteration']}), "
                f"checkpoint {result.checkpoints[stage]}"
            )
            missed = _budget_missed(stage, result.config, metrics["computation_pct"])
            if missed:
                print(f"warning: {stage}: {missed}", file=sys.stderr)
        else:
            print(
                f"{stage}: no validation split; last {_LOG_EVERY} iterations' training accuracy "
                f"{metrics.get('training_accuracy', math.nan):.1f}%, computation "
                f"{metrics.get('training_computation_pct', math.nan):.1f}%, checkpoint {result.checkpoints[stage]}"
            )
    if result.stopped_early:
        print(f"stopped early; resume with --resume {result.last_checkpoint}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
