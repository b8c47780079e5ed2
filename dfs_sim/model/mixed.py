"""Per-layer mixed precision from a backbone: block sensitivities on the validation split, then the exact search on a
preset's cost (``cost_models.mixed_precision``), exported as a static run whose width varies by block but not by input.

    python -m dfs_sim.mixed BACKBONE --preset bitfusion_eyeriss --metric energy --target 12 --out T.parquet \
        [--widths q2,q3,q4,q5,q6,q8] [--sensitivity CACHE.csv]

Sensitivity of block b at width w: the mean validation cross-entropy with block b alone at w and every other gated
block at full precision, less the full-precision loss (the activation ranges calibrated with every block at w, on the
training part, as a post-training export does). It is measured once per backbone, quantizer and width set and kept in
``--sensitivity`` (a CSV), so further targets cost only the search and the export.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F

from cost_models.budget import CostBasis, budget_costs, budget_pct
from cost_models.mixed_precision import search_widths
from dfs_sim.errors import ConfigError, DfsSimError, report_bad_input
from dfs_sim.model.checkpoint import load_checkpoint
from dfs_sim.model.data import GEOMETRY, Split, load_split, split_validation
from dfs_sim.model.export import export, model_from_checkpoint
from dfs_sim.model.infer import calibrate_quantizers
from dfs_sim.model.quantize import DEFAULT_QUANTIZER, QUANTIZERS
from dfs_sim.model.resnet import GatedResNet, declared_layer_table
from dfs_sim.options import parse_options

__all__ = ["DEFAULT_WIDTHS", "block_sensitivity", "main", "mixed_assignment"]

DEFAULT_WIDTHS = ("q2", "q3", "q4", "q5", "q6", "q8")
SENSITIVITY_IMAGES = 2000  # validation images per evaluation: 102 evaluations stay within minutes on two cores


@torch.no_grad()
def _loss(model: GatedResNet, split: Split, batch_size: int = 500) -> float:
    model.eval()
    total = 0.0
    for start in range(0, len(split), batch_size):
        images, labels = split.batch(torch.arange(start, min(start + batch_size, len(split))))
        total += float(F.cross_entropy(model(images).logits.float(), labels, reduction="sum"))
    return total / len(split)


def block_sensitivity(
    record: dict, widths: Sequence[str], training: Split, validation: Split, quantizer: str, source: object
) -> pd.DataFrame:
    """Rows ``block, option, loss_increase`` for every gated block and width (module docstring)."""
    full, _ = model_from_checkpoint(record, ("fp",), source=source, quantizer=quantizer)
    base = _loss(full, validation)
    rows = []
    for width in widths:
        model, _ = model_from_checkpoint(record, (width,), source=source, quantizer=quantizer)
        calibrate_quantizers(model, training)  # ranges with every block at this width
        quantized, fp = 0, model.fp_code
        for block in range(model.num_gated):
            model.static_option = tuple(quantized if b == block else fp for b in range(model.num_gated))
            rows.append({"block": block, "option": width, "loss_increase": _loss(model, validation) - base})
        print(f"sensitivity {width}: done", flush=True)
    return pd.DataFrame(rows)


def mixed_assignment(
    sensitivity: pd.DataFrame, layers, widths: Sequence[str], basis: CostBasis, target_pct: float
) -> tuple[list[str], float]:
    """The width of every gated block under ``target_pct`` of ``basis``, and the cost it reaches (percent)."""
    options = parse_options([*widths, "fp"])
    costs = budget_costs(layers, options, basis)[:, : len(widths)]
    table = sensitivity.pivot(index="block", columns="option", values="loss_increase")[list(widths)].to_numpy()
    codes = search_widths(table, costs, target_pct)
    return [widths[c] for c in codes], budget_pct(codes[None, :], costs)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dfs_sim.mixed", description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", help="a backbone checkpoint")
    parser.add_argument("--preset", required=True, help="the preset whose cost the search spends (name or TOML)")
    parser.add_argument("--metric", default="energy", choices=("energy", "latency"))
    parser.add_argument("--target", type=float, required=True, help="percent of every gated block at full precision")
    parser.add_argument("--out", required=True, help="trace file to write (.parquet)")
    parser.add_argument("--widths", default=",".join(DEFAULT_WIDTHS), help="candidate widths, comma-separated")
    parser.add_argument("--quantizer", default=DEFAULT_QUANTIZER, choices=sorted(QUANTIZERS))
    parser.add_argument("--sensitivity", help="CSV cache of the block sensitivities (read if present, else written)")
    parser.add_argument("--data-path")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    try:
        widths = tuple(w.strip() for w in args.widths.split(","))
        try:
            parse_options([*widths, "fp"])
        except ValueError as error:
            raise ConfigError("--widths", str(error)) from None
        if not 0 < args.target <= 100:
            raise ConfigError("--target", f"must be a percentage in (0, 100], got {args.target:g}")
        basis = CostBasis(args.preset, args.metric).check("--preset")
        record = load_checkpoint(args.checkpoint)
        config = record["config"]
        dataset, seed = config["dataset"], config.get("split_seed", 0)
        cache = Path(args.sensitivity) if args.sensitivity else None
        if cache is not None and cache.is_file():
            sensitivity = pd.read_csv(cache)
            if set(sensitivity["option"]) < set(widths) or set(sensitivity.columns) < {"block", "option"}:
                raise ConfigError(cache, f"holds widths {sorted(set(sensitivity['option']))}, not all of {widths}")
        else:
            training, validation = split_validation(
                load_split(dataset, "train", args.data_path or config.get("data_path"), seed),
                config.get("validation_fraction", 0.1),
                seed,
            )
            if validation is None:
                raise ConfigError(args.checkpoint, "its config holds out no validation split to measure on")
            validation = validation.subset(torch.arange(min(SENSITIVITY_IMAGES, len(validation))), "validation")
            sensitivity = block_sensitivity(record, widths, training, validation, args.quantizer, args.checkpoint)
            if cache is not None:
                sensitivity.to_csv(cache, index=False)
        model, _ = model_from_checkpoint(record, ("fp",), source=args.checkpoint)
        layers = declared_layer_table(model, input_size=GEOMETRY[dataset].size)
        try:
            names, reached = mixed_assignment(sensitivity, layers, widths, basis, args.target)
        except ValueError as error:
            raise ConfigError("--target", str(error)) from None
        result = export(
            args.checkpoint,
            args.out,
            static_option=names,
            quantizer=args.quantizer,
            data_path=args.data_path,
            command=shlex.join(["python", "-m", "dfs_sim.mixed", *argv]),
            extra_meta={
                "mixed_precision": {
                    "search": "multiple-choice knapsack over validation loss increases (cost_models.mixed_precision)",
                    "cost_basis": basis.to_meta(),
                    "target_pct": args.target,
                    "reached_pct": reached,
                    "candidate_widths": list(widths),
                    "predicted_loss_increase": float(
                        np.sum(sensitivity.set_index(["block", "option"]).loc[list(enumerate(names)), "loss_increase"])
                    ),
                }
            },
        )
    except DfsSimError as error:
        return report_bad_input(error)
    print(
        f"{result.path}: mixed precision at {reached:.2f}% of {basis.label} (target {args.target:g}%): "
        f"{','.join(names)}; accuracy {result.evaluation.accuracy * 100:.2f}%"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
