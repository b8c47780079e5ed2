"""A dynamic network that is not DFS, priced beside the bundle: an early-exit CNN on Fashion-MNIST.

Three stages of two 3×3 convolutions (16, 32, 64 channels; the second and third halve the image) with a classifier
after each: an input leaves at the first exit whose softmax maximum reaches a confidence threshold (BranchyNet,
Teerapittayanon et al., ICPR 2016). All three exits are trained together (summed cross-entropy). Each threshold is
one run; its trace says, per test image, which gated units ran: stage 2, the second exit's classifier, and stage 3
with the final classifier, in that order; leaving early skips every later unit. The stem, stage 1 and the first
exit always run.

It uses only the public API: ``layer_table_from_module`` for the layer table, ``new_trace`` and ``write_trace`` for
the traces (docs/python.md). The trained weights are committed (``--checkpoint``), so a rerun only writes missing
traces; ``--retrain`` trains again. Replay them with the bundle: ``python -m dfs_sim.replay examples/traces``.

    python examples/early_exit.py                      # train if needed, then write the missing traces
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from dfs_sim.errors import DfsSimError, report_bad_input  # noqa: E402
from dfs_sim.importers import layer_table_from_module  # noqa: E402
from dfs_sim.model.data import load_split, split_validation  # noqa: E402
from dfs_sim.options import parse_options  # noqa: E402
from dfs_sim.traces import new_trace, write_trace  # noqa: E402

OPTIONS = parse_options(["skip", "fp"])  # a unit runs or it does not
THRESHOLDS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)  # 1.0: no input leaves early (softmax maxima stay below 1)
EXITS = 3


def _stage(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


def _head(channels: int, classes: int) -> nn.Sequential:
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, classes))


class EarlyExitCNN(nn.Module):
    """``gated.0``: stage 2; ``gated.1``: the second exit; ``gated.2``: stage 3 and the final classifier."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True))
        self.stage1 = _stage(16, 16, 1)
        self.exit0 = _head(16, classes)
        self.gated = nn.ModuleList(
            [_stage(16, 32, 2), _head(32, classes), nn.Sequential(_stage(32, 64, 2), _head(64, classes))]
        )

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The logits of every exit (training, and the per-input exit choice afterwards)."""
        early = self.stage1(self.stem(images))
        middle = self.gated[0](early)
        return [self.exit0(early), self.gated[1](middle), self.gated[2](middle)]


def train(model: EarlyExitCNN, data: Path | None, epochs: int, seed: int) -> None:
    """SGD with momentum on the training split minus a seeded 10% (held out, as the DFS runs hold it out)."""
    train_split, _ = split_validation(load_split("fashion-mnist", "train", data), 0.1, seed)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)
    steps = epochs * (len(train_split) // 128)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=steps)
    model.train()
    for epoch in range(epochs):
        started, order = time.time(), torch.randperm(len(train_split), generator=generator)
        total = 0.0
        for step in range(len(train_split) // 128):
            images, labels = train_split.batch(order[step * 128 : (step + 1) * 128])
            loss = sum(F.cross_entropy(logits, labels) for logits in model(images))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach())
        print(f"epoch {epoch + 1}/{epochs}: loss {total / (step + 1):.3f} ({time.time() - started:.0f} s)", flush=True)


@torch.no_grad()
def exit_probabilities(model: EarlyExitCNN, data: Path | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels, input ids, softmax of every exit: inputs × exits × classes) on the test split."""
    test = load_split("fashion-mnist", "test", data)
    model.eval()
    chunks = []
    for start in range(0, len(test), 1000):
        images, _ = test.batch(torch.arange(start, min(start + 1000, len(test))))
        chunks.append(torch.stack([F.softmax(logits, 1) for logits in model(images)], 1))
    return test.labels.numpy(), test.input_ids.numpy(), torch.cat(chunks).numpy()


def exits_at(probabilities: np.ndarray, threshold: float) -> np.ndarray:
    """Each input's exit: the first whose softmax maximum reaches ``threshold``, else the last."""
    confident = probabilities.max(axis=2) >= threshold
    confident[:, -1] = True
    return confident.argmax(axis=1)


def unit_codes(exits: np.ndarray) -> np.ndarray:
    """Which gated unit each input runs (1) or skips (0), from the exit it takes: exit 0 runs none, exit 1 runs stage 2
    and the second classifier, the last exit runs all three."""
    runs = np.array([[0, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=np.uint8)
    return runs[exits]


def _shown(path: Path) -> str:
    """``path`` relative to the checkout when inside it (traces record no machine's folders)."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="Fashion-MNIST IDX folder (default: Debian's)")
    parser.add_argument("--checkpoint", type=Path, default=ROOT / "examples/checkpoints/fashion-mnist_early_exit.pt")
    parser.add_argument("--out", type=Path, default=ROOT / "examples/traces")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--retrain", action="store_true", help="train again even if the checkpoint exists")
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    model = EarlyExitCNN()
    try:
        if args.checkpoint.is_file() and not args.retrain:
            model.load_state_dict(torch.load(args.checkpoint, map_location="cpu", weights_only=True))
        else:
            train(model, args.data, args.epochs, args.seed)
            args.checkpoint.parent.mkdir(parents=True, exist_ok=True)
            torch.save(model.state_dict(), args.checkpoint)
        layers = layer_table_from_module(model, (1, 28, 28), gated=r"^gated\.\d+$", options=OPTIONS)
        labels, input_ids, probabilities = exit_probabilities(model, args.data)
        for threshold in THRESHOLDS:
            path = args.out / f"early_exit_t{threshold:g}.parquet"
            if path.is_file() and not args.retrain:
                print(f"{_shown(path)} exists, skipped")
                continue
            exits = exits_at(probabilities, threshold)
            chosen = probabilities[np.arange(len(exits)), exits]
            run = new_trace(
                name=path.stem,
                method="early_exit",
                layers=layers,
                options=OPTIONS,
                codes=unit_codes(exits),
                labels=labels,
                predictions=chosen.argmax(axis=1),
                confidences=chosen.max(axis=1),
                input_ids=input_ids,
                dataset="fashion-mnist",
                num_classes=10,
                seed=args.seed,
                model={"arch": "early_exit_cnn", "exits": EXITS},
                threshold=threshold,
                exit_fractions=(np.bincount(exits, minlength=EXITS) / len(exits)).tolist(),
                split="test",
                checkpoint=_shown(args.checkpoint),
                train_config={"epochs": args.epochs, "seed": args.seed, "loss": "sum of the exits' cross-entropy"},
            )
            write_trace(path, run)
            print(f"{_shown(path)}: accuracy {run.accuracy:.2%}, exits {np.bincount(exits, minlength=3)}")
    except DfsSimError as error:
        return report_bad_input(error)
    return 0


if __name__ == "__main__":
    sys.exit(main())
