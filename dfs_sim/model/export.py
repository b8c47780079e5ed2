"""Evaluate a checkpoint on a split and write a trace file (docs/design.md §2): ``export(...)`` and
``python -m dfs_sim.export``.

The trace's layer table is observed from the torch model by forward hooks (``traced_layer_table``), and checked against
``cifar_resnet_layers``. A backbone checkpoint exported with ``static_option`` becomes a post-training static baseline:
every gated block at one width, or each at its own (mixed precision), the activation ranges calibrated on the training
split first; the trace's option list holds those widths and ``fp`` (the always-run layers). A quantization-aware
checkpoint (stage ``qat``) exports as a static baseline at its own widths.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cost_models.budget import CostBasis
from dfs_sim.errors import ConfigError, DfsSimError, LayerTableError, report_bad_input
from dfs_sim.layer_table import LayerTable
from dfs_sim.model.checkpoint import CheckpointError, load_backbone_into, load_checkpoint_hashed, load_weights_into
from dfs_sim.model.config import static_model_options
from dfs_sim.model.data import DATASETS, GEOMETRY, load_split, num_classes_of, split_validation
from dfs_sim.model.device import resolve_device
from dfs_sim.model.infer import Evaluation, calibrate_quantizers, evaluate
from dfs_sim.model.precision import GROUP, MEASUREMENTS, POSITIONS, StepGeometry, step_measurement
from dfs_sim.model.quantize import DEFAULT_QUANTIZER, LEGACY_QUANTIZER, QUANTIZERS
from dfs_sim.model.registry import create_model, parse_model_name
from dfs_sim.model.resnet import GatedResNet, declared_layer_table, traced_layer_table
from dfs_sim.model.training import apply_cost_basis
from dfs_sim.options import DFS_OPTIONS, parse_options, skipnet_computation_pct
from dfs_sim.traces import PRECISION_STEPS, TraceRun, make_meta, write_trace

__all__ = [
    "ExportResult",
    "ExportSource",
    "export",
    "main",
    "model_from_checkpoint",
    "open_for_export",
    "parse_static_option",
]


@dataclass(frozen=True)
class ExportResult:
    path: Path
    evaluation: Evaluation
    meta: dict


def parse_static_option(value: str | int | Sequence[str] | None, depth: int = 38) -> tuple[str, ...] | None:
    """The option names of a static baseline: a DFS code (0..6), a name (``q4``, ``w8a4``, ``fp``: any width the option
    grammar names), or a comma-separated list of one name per gated block (per-layer mixed precision)."""
    if value is None:
        return None
    if isinstance(value, int) or (isinstance(value, str) and value.isdecimal()):
        code = int(value)
        if not 0 <= code < len(DFS_OPTIONS):
            raise ConfigError("--static-option", f"code {code} is not a DFS option code (0..{len(DFS_OPTIONS) - 1})")
        names: tuple[str, ...] = (DFS_OPTIONS[code].name,)
    elif isinstance(value, str):
        names = tuple(name.strip() for name in value.split(","))
    else:
        names = tuple(str(name) for name in value)
    try:
        static_model_options(names, f"static_resnet{depth}")
    except ValueError as error:
        raise ConfigError("--static-option", f"{value!r}: {error}; names: qN, wNaM or fp") from None
    return names


def model_from_checkpoint(
    record: dict,
    static_option: Sequence[str] | None = None,
    source: object = "checkpoint",
    quantizer: str | None = None,
):
    """``(model, method)`` from a checkpoint record (as ``load_checkpoint`` returns it); ``static_option`` (option
    names, ``parse_static_option``) builds the static model from its backbone, quantized with ``quantizer`` (default:
    the project's).

    Without a static option only trained checkpoints are exported: the joint stage of a gated model (SkipNet: its
    ``sp`` or ``hrl`` phase) and the quantization-aware stage of a static one. A backbone checkpoint's gates are
    untrained, and a gate-stage checkpoint's gates were trained toward full execution, not toward its config's
    budget.
    """
    method, depth = parse_model_name(record["model_name"])
    config = record["config"]
    trained_quantizer = config.get("quantizer", LEGACY_QUANTIZER)  # runs from before the choice: the authors' one
    if not isinstance(trained_quantizer, str) or trained_quantizer not in QUANTIZERS:
        raise CheckpointError(source, f"config.quantizer: unknown quantizer {trained_quantizer!r}")
    if method == "static" and static_option is not None:
        raise CheckpointError(
            source, "a quantization-aware checkpoint has its widths; export it without --static-option"
        )
    if static_option is None and record["stage"] == "backbone":
        raise CheckpointError(source, "a backbone checkpoint has untrained gates; export it with a static option")
    if static_option is None and record["stage"] == "gate":
        raise CheckpointError(
            source,
            "a gate-stage checkpoint is trained toward full execution, not toward a "
            "budget; export its joint-stage checkpoint (joint.pt), or a backbone with "
            "--static-option",
        )
    dataset = config.get("dataset")
    in_channels = GEOMETRY[dataset].channels if dataset in GEOMETRY else 3  # an unknown data set is reported later
    if static_option is not None or method == "static":
        name = f"static_resnet{depth}"
        names = static_option if static_option is not None else config.get("static_options")
        if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
            raise CheckpointError(source, f"config.static_options: expected a list of option names, got {names!r}")
        try:
            options, codes = static_model_options(names or (), name)
        except ValueError as error:
            raise CheckpointError(source, f"static options: {error}") from None
        scheme = trained_quantizer if static_option is None else quantizer or DEFAULT_QUANTIZER
        if scheme not in QUANTIZERS:
            raise ConfigError("--quantizer", f"unknown quantizer {scheme!r}; valid: {', '.join(QUANTIZERS)}")
        model = create_model(
            name,
            option=codes,
            options=options,
            num_classes=record["num_classes"],
            in_channels=in_channels,
            quantizer=scheme,
        )
        if static_option is None:
            load_weights_into(model, record, source, name)
        else:
            load_backbone_into(model, record, source, name)
        return model, "static"
    names = config.get("options")
    try:
        options = {} if names is None else {"options": parse_options(names)}
    except ValueError as error:
        raise CheckpointError(source, f"config.options: {error}") from None
    model = create_model(
        record["model_name"],
        num_classes=record["num_classes"],
        in_channels=in_channels,
        quantizer=trained_quantizer,
        **options,
    )
    load_weights_into(model, record, source, record["model_name"])
    if dataset in GEOMETRY:
        apply_cost_basis(model, _cost_basis_of(record, source), GEOMETRY[dataset].size)
    return model, method


def _cost_basis_of(record: dict, source: object) -> CostBasis:
    """The cost basis the checkpoint's run was trained on (checkpoints from before cost bases: the proxy)."""
    try:
        return CostBasis.from_meta(record["config"].get("cost")).check()
    except (ValueError, DfsSimError) as error:
        raise CheckpointError(source, f"config.cost: {error}") from None


def _trained_on(record: dict, source: object, static: bool) -> tuple[str, str | None, int, float | None]:
    """``(dataset, data_path, split_seed, budget)`` from the checkpoint's training config, each checked."""
    config = record["config"]
    dataset, data_path, split_seed = config.get("dataset"), config.get("data_path"), config.get("split_seed", 0)
    skipnet = parse_model_name(record["model_name"])[0] == "skipnet"
    if dataset not in DATASETS:
        raise CheckpointError(source, f"config.dataset: expected one of {list(DATASETS)}, got {dataset!r}")
    if num_classes_of(dataset) != record["num_classes"]:
        raise CheckpointError(
            source,
            f"num_classes {record['num_classes']} does not match the data set {dataset} "
            f"({num_classes_of(dataset)} classes)",
        )
    if data_path is not None and not isinstance(data_path, str):
        raise CheckpointError(source, f"config.data_path: expected a path, got {data_path!r}")
    if isinstance(split_seed, bool) or not isinstance(split_seed, int) or split_seed < 0:
        raise CheckpointError(source, f"config.split_seed: expected an integer >= 0, got {split_seed!r}")
    if static or skipnet:  # SkipNet has no budget: its alpha sets the trade-off
        return dataset, data_path, split_seed, None
    budget = config.get("budget")
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not 0 <= budget <= 100:
        raise CheckpointError(source, f"config.budget: expected a computation percentage in 0..100, got {budget!r}")
    return dataset, data_path, split_seed, float(budget)


@dataclass(frozen=True)
class ExportSource:
    """A checkpoint ready to export: its record and hash, the model with its weights, and what its config says."""

    record: dict
    sha256: str
    model: object
    method: str
    dataset: str
    data_path: str | None
    split_seed: int
    budget: float | None


def open_for_export(
    checkpoint: str | Path, static_option: int | str | Sequence[str] | None = None, quantizer: str | None = None
) -> ExportSource:
    """Read ``checkpoint`` and build its model (the static one for ``static_option``), checking everything export
    needs before any data is loaded: a bad file is one ``DfsSimError`` naming it."""
    checkpoint = Path(checkpoint)
    record, sha256 = load_checkpoint_hashed(checkpoint)
    depth = parse_model_name(record["model_name"])[1]
    static = parse_static_option(static_option, depth)
    model, method = model_from_checkpoint(record, static, source=checkpoint, quantizer=quantizer)
    dataset, data_path, split_seed, budget = _trained_on(record, checkpoint, method == "static")
    return ExportSource(record, sha256, model, method, dataset, data_path, split_seed, budget)


def export(
    checkpoint: str | Path,
    out: str | Path,
    *,
    split: str = "test",
    data_path: str | None = None,
    static_option: int | str | Sequence[str] | None = None,
    quantizer: str | None = None,
    batch_size: int = 256,
    device: str = "auto",
    command: str | None = None,
    effective_precision: bool = False,
    precision_positions: int = 1,
    precision_measure: str = "position",
    precision_preset: str = "stripes_dynamic",
    extra_meta: dict | None = None,
) -> ExportResult:
    """Evaluate ``checkpoint`` on ``split`` and write the trace to ``out``; returns the path and the evaluation.
    ``effective_precision``: the trace also records the activation bits each decision needed (format 3), in groups
    of 16 channels × ``precision_positions`` (1 or 16) positions (``precision_measure = "position"``, the default and
    the meaning of older traces), or DNNsim's per-step widths for the geometry of the bit-serial preset
    ``precision_preset`` (``"step"``: its windows, lanes, filters·tiles and activation bits per cycle;
    ``dfs_sim.model.precision``); the metadata's ``effective_precision.measurement`` names which; ``extra_meta``:
    more keys for the trace's metadata (e.g. how a mixed-precision assignment was searched)."""
    checkpoint, out = Path(checkpoint), Path(out)
    _check_output(out)  # before the evaluation, so that a wrong --out costs nothing
    if precision_positions not in POSITIONS:
        raise ConfigError("--precision-positions", f"must be one of {POSITIONS}, got {precision_positions!r}")
    if precision_measure not in MEASUREMENTS:
        raise ConfigError("--precision-measure", f"must be one of {MEASUREMENTS}, got {precision_measure!r}")
    step_geometry = _step_geometry(precision_preset) if effective_precision and precision_measure == "step" else None
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError("--batch-size", f"must be an integer >= 1, got {batch_size!r}")
    torch_device = resolve_device(device, "--device")
    if quantizer is not None and static_option is None:
        raise ConfigError("--quantizer", "applies to --static-option only; a trained checkpoint keeps its quantizer")
    source = open_for_export(checkpoint, static_option, quantizer)
    model = source.model
    data_path = data_path if data_path is not None else source.data_path
    data = load_split(source.dataset, split, data_path, source.split_seed)
    model.to(torch_device)
    layers = _checked_layer_table(model, source.dataset, checkpoint)
    calibration = None
    if static_option is not None and any(not o.float for o in model.options):  # post-training: calibrate first
        calibration = _calibrate(model, source, data_path, checkpoint)
    with step_measurement(model, step_geometry) if step_geometry is not None else contextlib.nullcontext():
        evaluation = evaluate(
            model,
            data,
            batch_size=batch_size,
            measure_precision=effective_precision,
            precision_positions=precision_positions,
        )
    extra = _run_meta(source, checkpoint, split, evaluation, calibration, post_training=static_option is not None)
    if effective_precision:
        extra["effective_precision"] = _precision_meta(precision_positions, precision_preset, step_geometry)
    extra.update(extra_meta or {})
    geometry = GEOMETRY[source.dataset]
    meta = make_meta(
        method=source.method,
        budget=source.budget,
        model={
            "arch": "cifar_resnet",
            "depth": model.depth,
            "dataset": source.dataset,
            "num_classes": model.num_classes,
            "input_size": [geometry.channels, geometry.size, geometry.size],
        },
        options=model.options,
        layers=layers,
        seed=int(source.record["seed"]),
        command=command,
        **extra,
    )
    run = TraceRun(
        meta=meta,
        codes=evaluation.codes,
        input_id=evaluation.input_id,
        label=evaluation.label,
        pred=evaluation.pred,
        confidence=evaluation.confidence,
        precision=evaluation.precision,
    )
    path = write_trace(out, run)
    return ExportResult(path, evaluation, meta)


def _check_output(out: Path) -> None:
    if out.is_dir():
        raise ConfigError(out, "the output path is a folder; give a .parquet file name")
    if not out.parent.is_dir():
        raise ConfigError(out, "output folder does not exist")
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise ConfigError(out, "output folder is not writable")


def _checked_layer_table(model, dataset: str, checkpoint: Path) -> LayerTable:
    """The model's layer table as a forward pass observes it, which must be the one its shape declares."""
    size = GEOMETRY[dataset].size
    layers = traced_layer_table(model, input_size=size)
    if layers != declared_layer_table(model, input_size=size):
        raise LayerTableError(checkpoint, "the model's traced layer table differs from cifar_resnet_layers")
    return layers


def _calibrate(model, source: ExportSource, data_path: str | None, checkpoint: Path) -> dict:
    """A post-training static model's activation ranges, calibrated on the training split with the checkpoint's
    validation part held out; what the trace records of it."""
    fraction = source.record["config"].get("validation_fraction", 0.1)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction < 1:
        raise CheckpointError(checkpoint, f"config.validation_fraction: expected a number in [0, 1), got {fraction!r}")
    train = load_split(source.dataset, "train", data_path, source.split_seed)
    train_split = split_validation(train, fraction, source.split_seed)[0]
    return {"split": "train", "validation_held_out": fraction, "images": calibrate_quantizers(model, train_split)}


def _run_meta(
    source: ExportSource, checkpoint: Path, split: str, evaluation, calibration: dict | None, post_training: bool
) -> dict:
    """What the trace records of the run beyond ``make_meta``'s keys: its checkpoint, split, training config,
    evaluation, budget basis, SkipNet's own computation, quantizer and, for a static run, its widths."""
    record, model, config = source.record, source.model, source.record["config"]
    assert isinstance(model, GatedResNet)
    extra = {
        "checkpoint": checkpoint.name,
        "checkpoint_sha256": source.sha256[:16],
        "checkpoint_stage": record["stage"],
        "split": split,
        "split_seed": source.split_seed,
        "train_config": config,
        "accuracy": evaluation.accuracy,
        "computation_pct": evaluation.computation_pct,
        "quantizer": model.quantizer,
    }
    if source.method != "static":
        extra.update(cost_basis=model.cost_basis.to_meta(), budget_pct=evaluation.budget_pct)
    if source.method == "skipnet":
        extra.update(
            alpha=config.get("alpha"),
            skipnet_computation_pct=skipnet_computation_pct(evaluation.codes, model.skip_code),
        )
    if source.method == "static":
        codes = [model.static_option] * model.num_gated if isinstance(model.static_option, int) else model.static_option
        names = [model.options[code].name for code in codes]
        extra["static_option"] = names[0] if len(set(names)) == 1 else None
        extra["static_options"] = names
        extra["static_training"] = "ptq" if post_training else "qat"
        extra["quantizer_calibration"] = calibration
    return extra


def _precision_meta(positions: int, preset: str, step_geometry: StepGeometry | None) -> dict:
    """How the effective precisions were measured (``effective_precision`` in the metadata)."""
    if step_geometry is None:
        return {
            "measurement": "position",
            "group_channels": GROUP,
            "group_positions": positions,
            "steps_per_bit": PRECISION_STEPS,
            "weights": "macs",
        }
    return {
        "measurement": "step",
        "preset": preset,
        **step_geometry.to_meta(),
        "steps_per_bit": PRECISION_STEPS,
        "weights": "steps",
    }


def _step_geometry(preset_name: str) -> StepGeometry:
    """The step geometry of a bit-serial preset (``--precision-preset``): windows, lanes, filters·tiles, activation
    bits per cycle."""
    from cost_models.preset import SerialArray, load_preset

    try:
        preset = load_preset(preset_name)
    except DfsSimError as error:
        raise ConfigError("--precision-preset", str(error)) from None
    array = preset.array
    if not isinstance(array, SerialArray):
        raise ConfigError("--precision-preset", f"{preset_name!r} is not a bit-serial preset")
    return StepGeometry(**array.step_geometry())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dfs_sim.export", description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", help="a checkpoint written by python -m dfs_sim.train")
    parser.add_argument("--out", required=True, help="trace file to write (.parquet)")
    parser.add_argument("--split", default="test", choices=("train", "test"))
    parser.add_argument(
        "--data-path", help="data folder (default: the one in the checkpoint's config, else the data set's default)"
    )
    parser.add_argument(
        "--static-option",
        help="static baseline from a backbone: one option for every gated block (qN, wNaM or fp, e.g. q4, w8a4; or a "
        "DFS code 0..6), or a comma-separated list of one per gated block (mixed precision)",
    )
    parser.add_argument(
        "--quantizer",
        choices=sorted(QUANTIZERS),
        help=f"with --static-option: how to quantize the backbone (default {DEFAULT_QUANTIZER}); a trained "
        "checkpoint keeps the quantizer it was trained with",
    )
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument(
        "--effective-precision",
        action="store_true",
        help="also record, per input and gated block, the activation bits the data needed (for dynamic-precision "
        "presets; dfs_sim/model/precision.py)",
    )
    parser.add_argument(
        "--precision-positions",
        type=int,
        default=1,
        choices=POSITIONS,
        help="with --effective-precision: positions per group of 16 channels; 1 (default) or 16, the windows a "
        "Stripes tile steps together (its slowest group sets the step)",
    )
    parser.add_argument(
        "--precision-measure",
        default="position",
        choices=MEASUREMENTS,
        help="with --effective-precision: 'position' (default): mean bit length of groups of 16 channels at "
        "--precision-positions positions; 'step': DNNsim's mean per-step width (widest activation of a step's "
        "windows x lanes, zero = 1 bit) for the geometry of --precision-preset",
    )
    parser.add_argument(
        "--precision-preset",
        default="stripes_dynamic",
        help="with --precision-measure step: the bit-serial preset whose windows, lanes, filters and activation bits "
        "per cycle define a step (default stripes_dynamic; loom_dynamic rounds each step up to 2 bits)",
    )
    parser.add_argument("--device", default="auto")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    try:
        result = export(
            args.checkpoint,
            args.out,
            split=args.split,
            data_path=args.data_path,
            static_option=args.static_option,
            quantizer=args.quantizer,
            batch_size=args.batch_size,
            device=args.device,
            command=shlex.join(["python", "-m", "dfs_sim.export", *argv]),
            effective_precision=args.effective_precision,
            precision_positions=args.precision_positions,
            precision_measure=args.precision_measure,
            precision_preset=args.precision_preset,
        )
    except DfsSimError as error:
        return report_bad_input(error)
    print(
        f"{result.path}: {result.meta['method']} accuracy {result.evaluation.accuracy * 100:.2f}%, "
        f"computation {result.evaluation.computation_pct:.1f}%, {len(result.evaluation.label)} inputs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
