"""Choose the quantizer on the validation split (never the test set): post-training static baselines of the bundled
backbone, every width, under each quantizer scheme.

    python examples/choose_quantizer.py [--out examples/quantizer_validation.csv]

For each scheme of ``dfs_sim.model.quantize.QUANTIZERS`` and each static width, the backbone's activation ranges are
calibrated on the training part (the validation images held out, as export does) and the model is evaluated on the
seeded validation split of the example's config. The table it writes is what docs/departures.md cites for the
project's default quantizer; rerunning it rewrites the same numbers (no randomness beyond the recorded seeds).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
WIDTHS = ("q2", "q3", "q4", "q5", "q6", "q8", "w8a4", "w4a8", "w6a4", "w4a6", "w2a8", "w8a2")


def main() -> int:
    from dfs_sim.model.checkpoint import load_checkpoint
    from dfs_sim.model.data import load_split, split_validation
    from dfs_sim.model.export import model_from_checkpoint
    from dfs_sim.model.infer import calibrate_quantizers, evaluate
    from dfs_sim.model.quantize import QUANTIZERS

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=str(ROOT / "examples/checkpoints/fashion-mnist_r38_backbone.pt"))
    parser.add_argument("--out", default=str(ROOT / "examples/quantizer_validation.csv"))
    parser.add_argument("--widths", default=",".join(WIDTHS))
    args = parser.parse_args()
    record = load_checkpoint(args.checkpoint)
    config = record["config"]
    dataset, seed = config["dataset"], config.get("split_seed", 0)
    training, validation = split_validation(
        load_split(dataset, "train", config.get("data_path"), seed), config.get("validation_fraction", 0.1), seed
    )
    assert validation is not None
    rows = []
    for scheme in QUANTIZERS:
        for width in args.widths.split(","):
            started = time.perf_counter()
            model, _ = model_from_checkpoint(record, (width,), source=args.checkpoint, quantizer=scheme)
            calibrate_quantizers(model, training)
            accuracy = evaluate(model, validation).accuracy * 100
            rows.append({"quantizer": scheme, "option": width, "validation_accuracy_pct": round(accuracy, 2)})
            print(f"{scheme:13s} {width:5s} {accuracy:6.2f}%  ({time.perf_counter() - started:.0f} s)", flush=True)
    model, _ = model_from_checkpoint(record, ("fp",), source=args.checkpoint)
    full = evaluate(model, validation).accuracy * 100
    rows.append({"quantizer": "none", "option": "fp", "validation_accuracy_pct": round(full, 2)})
    frame = pd.DataFrame(rows)
    frame.attrs["validation_images"] = len(validation)
    frame.to_csv(args.out, index=False)
    table = frame.pivot(index="option", columns="quantizer", values="validation_accuracy_pct")
    print(table.to_string())
    print(f"full precision {full:.2f}% on {len(validation)} validation images; written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
