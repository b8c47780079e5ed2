"""Evaluate a checkpoint on a split and write a trace file (DESIGN §2): ``export(...)`` and ``python -m dfs_sim.export``.

The trace's layer table is observed from the torch model by forward hooks (``traced_layer_table``), and checked against
``cifar_resnet_layers``. A backbone checkpoint exported with ``static_option`` becomes a static baseline: every gated
block at that one option of the seven-option DFS list (the gates are not run).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dfs_sim.model.checkpoint import CheckpointError, load_checkpoint_hashed
from dfs_sim.model.data import load_split
from dfs_sim.errors import ConfigError, DfsSimError, LayerTableError
from dfs_sim.model.infer import Evaluation, calibrate_quantizers, evaluate
from dfs_sim.layer_table import cifar_resnet_layers
from dfs_sim.options import DFS_OPTIONS
from dfs_sim.model.registry import create_model, parse_model_name
from dfs_sim.model.resnet import traced_layer_table
from dfs_sim.traces import TraceRun, make_meta, write_trace
from dfs_sim.model.training import select_device

__all__ = ["ExportResult", "export", "main", "model_from_checkpoint", "parse_static_option"]


@dataclass(frozen=True)
class ExportResult:
    path: Path
    evaluation: Evaluation
    meta: dict


def parse_static_option(value: str | int | None) -> int | None:
    """A DFS option code (0..6) or name (skip, q8, q10, q12, q14, q16, fp)."""
    if value is None:
        return None
    names = {option.name: option.code for option in DFS_OPTIONS}
    if isinstance(value, int) or str(value).isdigit():
        code = int(value)
        if 0 <= code < len(DFS_OPTIONS):
            return code
    elif str(value) in names:
        return names[str(value)]
    raise ConfigError("--static-option", f"unknown option {value!r}; valid: codes 0..6 or {', '.join(names)}")


def model_from_checkpoint(record: dict, static_option: int | None = None, source: object = "checkpoint"):
    """``(model, method)`` from a checkpoint record; ``static_option`` builds the static model from its backbone."""
    method, depth = parse_model_name(record["model_name"])
    if static_option is None and record["stage"] == "backbone":
        raise CheckpointError(source, "a backbone checkpoint has untrained gates; export it with a static option")
    if static_option is not None:
        model = create_model(f"static_resnet{depth}", option=static_option, num_classes=record["num_classes"])
        missing, unexpected = model.load_backbone(record["model"])
        if missing:
            raise CheckpointError(source, f"backbone does not fit static_resnet{depth}: missing {missing[:3]}")
        if unexpected:
            raise CheckpointError(source, f"backbone does not fit static_resnet{depth}: unexpected {unexpected[:3]}")
        return model, "static"
    model = create_model(record["model_name"], num_classes=record["num_classes"])
    try:
        model.load_state_dict(record["model"])
    except RuntimeError as error:
        raise CheckpointError(source, f"weights do not fit {record['model_name']}: {str(error)[:200]}") from None
    return model, method


def export(checkpoint: str | Path, out: str | Path, *, split: str = "test", data_path: str | None = None,
           static_option: int | str | None = None, batch_size: int = 256, device: str = "auto",
           command: str | None = None) -> ExportResult:
    """Evaluate ``checkpoint`` on ``split`` and write the trace to ``out``; returns the path and the evaluation."""
    checkpoint, out = Path(checkpoint), Path(out)
    if out.is_dir():  # checked before the evaluation, so that a wrong --out costs nothing
        raise ConfigError(out, "the output path is a folder; give a .parquet file name")
    if not out.parent.is_dir():
        raise ConfigError(out, "output folder does not exist")
    record, checkpoint_sha256 = load_checkpoint_hashed(checkpoint)
    static = parse_static_option(static_option)
    model, method = model_from_checkpoint(record, static, source=checkpoint)
    config = record["config"]
    dataset = config["dataset"]
    data_path = data_path if data_path is not None else config.get("data_path")
    split_seed = config.get("split_seed", 0)
    data = load_split(dataset, split, data_path, split_seed)
    model.to(select_device(device))
    layers = traced_layer_table(model, input_size=32)
    expected = cifar_resnet_layers(model.depth, num_classes=model.num_classes, options=model.options,
                                   gates=model.static_option is None)
    if layers != expected:
        raise LayerTableError(checkpoint, "the model's traced layer table differs from cifar_resnet_layers")
    calibration = None
    if static is not None and not model.options[static].float and not model.options[static].is_skip:
        train_split = load_split(dataset, "train", data_path, split_seed)
        calibration = {"split": "train", "images": calibrate_quantizers(model, train_split)}
    evaluation = evaluate(model, data, batch_size=batch_size)
    budget = None if method == "static" else float(config["budget"])
    extra = {
        "checkpoint": checkpoint.name,
        "checkpoint_sha256": checkpoint_sha256[:16],
        "checkpoint_stage": record["stage"],
        "split": split,
        "split_seed": split_seed,
        "train_config": config,
        "accuracy": evaluation.accuracy,
        "computation_pct": evaluation.computation_pct,
    }
    if static is not None:
        extra["static_option"] = static
        extra["quantizer_calibration"] = calibration
    meta = make_meta(
        method=method, budget=budget,
        model={"arch": "cifar_resnet", "depth": model.depth, "dataset": dataset, "num_classes": model.num_classes,
               "input_size": [3, 32, 32]},
        options=model.options, layers=layers, seed=int(record["seed"]), command=command, **extra)
    run = TraceRun(meta=meta, codes=evaluation.codes, input_id=evaluation.input_id, label=evaluation.label,
                   pred=evaluation.pred, confidence=evaluation.confidence)
    path = write_trace(out, run)
    return ExportResult(path, evaluation, meta)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dfs_sim.export", description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", help="a checkpoint written by python -m dfs_sim.train")
    parser.add_argument("--out", required=True, help="trace file to write (.parquet)")
    parser.add_argument("--split", default="test", choices=("train", "test"))
    parser.add_argument("--data-path", help="CIFAR folder (default: the one in the checkpoint's config)")
    parser.add_argument("--static-option", help="static baseline from a backbone: code 0..6 or skip/q8/.../fp")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="auto")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    try:
        result = export(args.checkpoint, args.out, split=args.split, data_path=args.data_path,
                        static_option=args.static_option, batch_size=args.batch_size, device=args.device,
                        command=shlex.join(["python", "-m", "dfs_sim.export", *argv]))
    except DfsSimError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{result.path}: {result.meta['method']} accuracy {result.evaluation.accuracy * 100:.2f}%, "
          f"computation {result.evaluation.computation_pct:.1f}%, {len(result.evaluation.label)} inputs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
