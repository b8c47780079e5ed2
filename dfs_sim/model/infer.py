"""Inference: run each input at the option its gate chose only (the batch grouped by option), and evaluate a split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cost_models.budget import budget_pct
from dfs_sim.model.data import Split
from dfs_sim.model.quantize import ActivationQuantizer
from dfs_sim.model.resnet import GatedOutput, GatedResNet
from dfs_sim.options import proxy_costs
from dfs_sim.traces import PRECISION_STEPS

__all__ = ["Evaluation", "calibrate_quantizers", "evaluate", "predict"]


@torch.no_grad()
def predict(
    model: GatedResNet,
    images: torch.Tensor,
    fixed_code: int | None = None,
    measure_precision: bool = False,
    precision_positions: int = 1,
) -> GatedOutput:
    """Eval-mode forward that executes only the chosen option of every input and block (``fixed_code``: every block
    at that option, no gate run; ``measure_precision``: also the bits each decision's activations needed, in groups
    of 16 channels × ``precision_positions`` positions)."""
    was_training = model.training
    model.eval()
    try:
        return model.forward_grouped(images, fixed_code, measure_precision, precision_positions)
    finally:
        model.train(was_training)


@dataclass(frozen=True)
class Evaluation:
    """Per-input results of one split: option codes (N × B uint8), predictions, labels, softmax confidence."""

    input_id: np.ndarray
    label: np.ndarray
    pred: np.ndarray
    confidence: np.ndarray
    codes: np.ndarray
    proxy_costs: tuple[float, ...]
    budget_costs: np.ndarray | None = None  # gated blocks × options on the model's cost basis
    precision: np.ndarray | None = None  # N × B uint8: needed activation bits in eighths (0: skip, full precision)

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.pred == self.label)) if len(self.label) else float("nan")

    @property
    def computation_pct(self) -> float:
        """The paper's proxy over the whole split (100 for a network with no gated block)."""
        if self.codes.size == 0:
            return 100.0
        return float(np.asarray(self.proxy_costs)[self.codes].mean() * 100)

    @property
    def budget_pct(self) -> float:
        """The percentage on the model's cost basis (``computation_pct`` when the basis is the proxy)."""
        if self.budget_costs is None:
            return self.computation_pct
        return budget_pct(self.codes, self.budget_costs)


def _batches(split: Split, batch_size: int, limit: int | None = None):
    """``(images, labels)`` batches of ``split`` in order, over its first ``limit`` inputs (all by default)."""
    end = len(split) if limit is None else min(len(split), limit)
    for start in range(0, end, batch_size):
        yield split.batch(torch.arange(start, min(start + batch_size, end)))


def evaluate(
    model: GatedResNet,
    split: Split,
    batch_size: int = 256,
    fixed_code: int | None = None,
    measure_precision: bool = False,
    precision_positions: int = 1,
) -> Evaluation:
    """Evaluate ``split`` on the device the model is on (``fixed_code``: every block at that option;
    ``measure_precision``: record the effective activation precisions in groups of 16 channels ×
    ``precision_positions`` positions, ``dfs_sim.model.precision``)."""
    device = next(model.parameters()).device
    labels, preds, confidences, codes, precision = [], [], [], [], []
    for images, target in _batches(split, batch_size):
        output = predict(model, images.to(device), fixed_code, measure_precision, precision_positions)
        if output.precision is not None:
            precision.append(torch.round(output.precision * PRECISION_STEPS).cpu().numpy())
        probs = torch.softmax(output.logits.float(), dim=1)
        confidence, pred = probs.max(dim=1)
        labels.append(target.numpy())
        preds.append(pred.cpu().numpy())
        confidences.append(confidence.cpu().numpy())
        codes.append(output.codes.cpu().numpy())
    return Evaluation(
        input_id=split.input_ids.numpy().astype(np.int64),
        label=np.concatenate(labels).astype(np.int16),
        pred=np.concatenate(preds).astype(np.int16),
        confidence=np.concatenate(confidences).astype(np.float32),
        codes=np.concatenate(codes).astype(np.uint8),
        proxy_costs=tuple(proxy_costs(model.options)),
        budget_costs=model.budget_costs.cpu().numpy().astype(np.float64),
        precision=np.concatenate(precision).astype(np.uint8) if measure_precision else None,
    )


@torch.no_grad()
def calibrate_quantizers(model: GatedResNet, split: Split, batches: int = 8, batch_size: int = 128) -> int:
    """Set the activation quantizers' running ranges (and, for ``standard_mse``, their per-width clips) from the first
    ``batches`` batches of ``split`` (in order), leaving every other state (BatchNorm statistics, weights) untouched;
    returns the number of images used.

    A backbone trained at full precision has never run its quantized options, so its ranges are unset; a static
    baseline calibrates them this way before evaluation, and the standard quantizers calibrate before a joint or
    quantization-aware stage. A static model runs its own widths; a gated one runs every gated block at its widest
    quantized option, and the clips are searched for every activation width its options use.
    """
    widths = sorted({o.a_bits for o in model.options if not o.is_skip and not o.float})
    if not widths:
        return 0
    was_training = model.training
    device = next(model.parameters()).device
    model.eval()
    quantizers = [m for m in model.modules() if isinstance(m, ActivationQuantizer)]
    widest = max((o for o in model.options if not o.is_skip and not o.float), key=lambda o: (o.a_bits, o.w_bits)).code
    fixed = None if model.static_option is not None else widest
    for quantizer in quantizers:
        quantizer.begin_calibration()
        quantizer.train()
    used = 0
    try:
        for images, _ in _batches(split, batch_size, limit=batches * batch_size):
            model.forward_grouped(images.to(device), fixed_code=fixed)
            used += len(images)
    finally:
        for quantizer in quantizers:
            quantizer.end_calibration(widths)
        model.train(was_training)
    return used
