"""The gated CIFAR ResNet of DFS and SkipNet (docs/design.md §1), and its layer table observed by forward hooks.

6n+2 layers: a 3×3 stem, three groups of n BasicBlocks at widths 16/32/64 (stride 2 and a 1×1 projection at the first
block of groups 2 and 3), global average pooling and a linear classifier. The stem, the first block, the classifier
and every projection always run at full precision; every other block is gated and runs at the option its gate picks
(or at one fixed option for the static baselines and for backbone training).

Execution paths:
- ``forward_candidates_reference`` (the plain training forward, kept as the reference): every option of a gated block
  is computed on the whole batch and mixed by the straight-through one-hot mask, ``Σ_k mask_k · candidate_k``. Under
  that estimator the weights only receive gradient through candidates that some input chose, so candidates chosen by
  no input in the batch are computed under ``torch.no_grad()``: the gate still gets their values, and gradients equal
  the naive all-with-grad version.
- ``forward_candidates`` (training): the same values and gradients, faster. A block's candidates share their input
  quantization (``GatedBasicBlock.candidates``), and the mix is one autograd function (``mix_candidates``) that
  copies each input's chosen candidate instead of summing seven products. With ``sync_free`` every candidate stays in
  the graph, so the forward never reads the chosen set back to the host (on a GPU a read-back per block would stall
  the queue; on a CPU it is free and saves the backward of unchosen candidates).
- ``forward_gate_stage`` (the gate stage, as the reference trains it): the backbone at full precision and frozen, the
  gates run beside it on each block's input; the masks do not change the output.
- ``forward_grouped`` (inference): the batch is split by the chosen option and each group runs only its option.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from dfs_sim.errors import ConfigError
from dfs_sim.layer_table import GATE_EMBED_DIM, ConvLayer, LayerTable, UnitNumbering, cifar_resnet_layers
from dfs_sim.model.blocks import GatedBasicBlock
from dfs_sim.model.distributed import BatchNorm2d
from dfs_sim.model.gate import GateController, GateEmbedding, SkipGateController
from dfs_sim.model.precision import PrecisionMeter
from dfs_sim.model.quantize import LEGACY_QUANTIZER, QUANTIZERS, fill_quantizer_defaults
from dfs_sim.options import DFS_OPTIONS, Option, skip_or_run

__all__ = ["GATES", "GatedOutput", "GatedResNet", "declared_layer_table", "mix_candidates", "traced_layer_table"]

GATES = ("softmax", "sigmoid")  # DFS's gate over the options; SkipNet's execute-or-skip gate


def _rows_like(t: torch.Tensor, layout: torch.Tensor) -> torch.Tensor:
    """``t`` as (N, everything else), its elements in the memory order of ``layout`` (so two such views pair element
    by element); no copy when ``t`` already has that layout (NCHW or channels_last)."""
    if layout.dim() == 4 and not layout.is_contiguous() and layout.is_contiguous(memory_format=torch.channels_last):
        t = t.contiguous(memory_format=torch.channels_last).permute(0, 2, 3, 1)
    else:
        t = t.contiguous()
    return t.reshape(t.shape[0], -1)


class _MixCandidates(torch.autograd.Function):
    """``Σ_k mask[:, k] · candidates[k]`` for a one-hot ``mask`` whose rows may carry gradient (straight-through).

    Forward: each input's chosen candidate, copied (the sum's value for a one-hot mask). Backward: the mask's gradient
    is ``<grad, candidate_k>`` per input, and candidate ``k`` gets ``grad · mask[:, k]``, as the plain sum's would.
    """

    @staticmethod
    def forward(ctx, mask, *candidates):
        codes = mask.argmax(dim=1)
        out = candidates[0].clone(memory_format=torch.preserve_format)
        shape = (-1,) + (1,) * (out.dim() - 1)
        for k in range(1, len(candidates)):
            out = torch.where((codes == k).view(shape), candidates[k], out)
        ctx.save_for_backward(mask, *candidates)
        return out

    @staticmethod
    def backward(ctx, grad):
        mask, *candidates = ctx.saved_tensors
        grad_mask = None
        if ctx.needs_input_grad[0]:
            rows = _rows_like(grad, grad).unsqueeze(1)
            grad_mask = torch.cat(
                [torch.bmm(rows, _rows_like(c, grad).unsqueeze(2)).view(-1, 1) for c in candidates], dim=1
            )
        shape = (-1,) + (1,) * (grad.dim() - 1)
        grads = [grad * mask[:, k].view(shape) if ctx.needs_input_grad[k + 1] else None for k in range(len(candidates))]
        return (grad_mask, *grads)


def mix_candidates(mask: torch.Tensor, candidates: Sequence[torch.Tensor]) -> torch.Tensor:
    """The block output ``Σ_k mask[:, k] · candidates[k]`` (one-hot ``mask``), as one autograd function."""
    return _MixCandidates.apply(mask, *candidates)


class GatedOutput(NamedTuple):
    """``logits`` (N × classes), ``masks`` (N × B × options, one-hot forward values), ``probs`` (gate softmax or
    None), ``precision`` (N × B float64: the bits each decision's quantized activations needed, 0 where skipped or at
    full precision; only when measured, ``dfs_sim.model.precision``)."""

    logits: torch.Tensor
    masks: torch.Tensor
    probs: torch.Tensor | None
    precision: torch.Tensor | None = None

    @property
    def codes(self) -> torch.Tensor:
        """The chosen option of every input and gated block (N × B, int64)."""
        return self.masks.detach().argmax(dim=2)


class GatedResNet(nn.Module):
    """Gated CIFAR ResNet; ``static_option`` fixes every gated block to one code, or each to its own (a sequence of
    one code per gated block: per-layer mixed precision), and no gate runs; ``gate`` is DFS's ``"softmax"`` gate or
    SkipNet's ``"sigmoid"`` one (options (skip, full precision) only); ``quantizer`` names the quantization scheme
    (``dfs_sim.model.quantize.QUANTIZERS``)."""

    def __init__(
        self,
        depth: int = 38,
        num_classes: int = 10,
        options: Sequence[Option] = DFS_OPTIONS,
        static_option: int | Sequence[int] | None = None,
        widths: tuple[int, int, int] = (16, 32, 64),
        embed_dim: int = GATE_EMBED_DIM,
        in_channels: int = 3,
        gate: str = "softmax",
        quantizer: str = LEGACY_QUANTIZER,
    ) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ConfigError("GatedResNet", f"depth must be 6n+2 (8, 14, 20, 38, 74, ...), got {depth}")
        self.depth, self.num_classes, self.options = depth, num_classes, tuple(options)
        self.widths, self.embed_dim, self.in_channels = tuple(widths), embed_dim, in_channels
        full = [option.code for option in self.options if option.float]
        if len(full) != 1:
            raise ConfigError("GatedResNet", "the option list needs exactly one full-precision option")
        self.fp_code = full[0]
        skips = [option.code for option in self.options if option.is_skip]
        self.skip_code = skips[0] if skips else None
        if quantizer not in QUANTIZERS:
            raise ConfigError("GatedResNet", f"unknown quantizer {quantizer!r}; valid: {', '.join(QUANTIZERS)}")
        self.quantizer = quantizer
        n = (depth - 2) // 6
        if static_option is not None and not isinstance(static_option, int):
            static_option = tuple(static_option)
            if len(static_option) != 3 * n - 1:
                raise ConfigError(
                    "GatedResNet", f"static_option: {len(static_option)} codes for {3 * n - 1} gated blocks"
                )
        codes = [static_option] if isinstance(static_option, int) else static_option or []
        if any(isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < len(self.options) for c in codes):
            raise ConfigError(
                "GatedResNet", f"static_option must be in 0..{len(self.options) - 1}, got {static_option}"
            )
        self.static_option = static_option
        if gate not in GATES:
            raise ConfigError("GatedResNet", f"gate must be one of {GATES}, got {gate!r}")
        if gate == "sigmoid" and not skip_or_run(self.options):
            raise ConfigError("GatedResNet", "the sigmoid gate decides between two options: (skip, full precision)")
        self.gate = gate
        self.register_buffer("costs", torch.tensor([option.proxy_cost for option in self.options]))

        self.stem = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        self.stem_bn = BatchNorm2d(widths[0])
        blocks, names, gate_channels = [], [], []
        channels = widths[0]
        for group, width in enumerate(widths):
            for index in range(n):
                stride = 2 if group > 0 and index == 0 else 1
                if blocks:  # every block but the first is gated; its gate reads the previous block's output
                    gate_channels.append(channels)
                blocks.append(GatedBasicBlock(channels, width, stride, quantizer))
                names.append(f"group{group + 1}.block{index}")
                channels = width
        self.first_block = blocks[0]
        self.blocks = nn.ModuleList(blocks[1:])
        self.block_names = tuple(names)
        self.gate_embeddings = nn.ModuleList(GateEmbedding(c, embed_dim) for c in gate_channels)
        self.controller: GateController | SkipGateController = (
            SkipGateController(embed_dim) if gate == "sigmoid" else GateController(embed_dim, len(self.options))
        )
        self.fc = nn.Linear(channels, num_classes)
        # what one decision costs against the budget, per gated block and option (the proxy unless a cost basis is
        # set); derived from the config, so not saved with the weights
        self.register_buffer("budget_costs", self.costs.repeat(self.num_gated, 1), persistent=False)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d) and not isinstance(module.weight, nn.parameter.UninitializedParameter):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    # ----------------------------------------------------------------------------------------------------------------
    @property
    def num_gated(self) -> int:
        return len(self.blocks)

    def gate_parameters(self) -> list[nn.Parameter]:
        return [*self.gate_embeddings.parameters(), *self.controller.parameters()]

    def backbone_parameters(self) -> list[nn.Parameter]:
        gate_ids = {id(p) for p in self.gate_parameters()}
        return [p for p in self.parameters() if id(p) not in gate_ids]

    @staticmethod
    def is_backbone_key(key: str) -> bool:
        """Whether a state key belongs to the backbone (not to the gates nor to the option costs)."""
        return not key.startswith(("gate_embeddings.", "controller.")) and key != "costs"

    @staticmethod
    def backbone_state_dict_of(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The state without the gates (to reuse a trained backbone in a model with another option list)."""
        return {k: v for k, v in state.items() if GatedResNet.is_backbone_key(k)}

    def load_backbone(self, state: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
        """Load the backbone of ``state`` (its gates are ignored); returns ``(missing, unexpected)`` backbone keys.

        Keys and shapes are compared first and nothing is loaded unless all fit: a key whose tensor differs in shape
        from the model's (a backbone of another depth, width or class count) is returned among ``unexpected`` as
        ``"key (shape [...], model [...])"``, so the caller reports it in one line instead of torch's size-mismatch
        error."""
        own = {k: v for k, v in self.state_dict().items() if self.is_backbone_key(k)}
        backbone = fill_quantizer_defaults(self.backbone_state_dict_of(state), own)
        missing = [k for k in own if k not in backbone]
        unexpected = [k for k in backbone if k not in own]
        for k, v in backbone.items():
            if k in own and (not isinstance(v, torch.Tensor) or v.shape != own[k].shape):
                shape = list(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
                unexpected.append(f"{k} (shape {shape}, model {list(own[k].shape)})")
        if not missing and not unexpected:
            self.load_state_dict(backbone, strict=False)
        return missing, unexpected

    def set_budget_costs(self, costs) -> None:
        """Measure the budget in ``costs`` (gated blocks × options, e.g. ``cost_models.budget.budget_costs``)."""
        costs = torch.as_tensor(costs, dtype=self.budget_costs.dtype, device=self.budget_costs.device)
        if costs.shape != self.budget_costs.shape:
            raise ConfigError(
                "budget costs", f"expected shape {list(self.budget_costs.shape)}, got {list(costs.shape)}"
            )
        self.budget_costs = costs.clone()

    def computation_pct(self, masks: torch.Tensor) -> torch.Tensor:
        """The budget percentage: Σ mask·cost / (number of gated decisions) × 100, with the cost of each block and
        option on the budget's basis (the paper's proxy by default)."""
        if masks.shape[1] == 0:
            return masks.new_tensor(100.0)
        return (masks * self.budget_costs).sum() / (masks.shape[0] * masks.shape[1]) * 100

    def computation_cost(self, masks: torch.Tensor) -> torch.Tensor:
        """Σ mask·cost over the batch and the gated blocks (the joint stage's penalty term)."""
        return (masks * self.budget_costs).sum()

    # ----------------------------------------------------------------------------------------------------------------
    def _head(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem_bn(self.stem(x)))
        return self.first_block(x, self.options[self.fp_code])

    def _tail(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    def _fixed_mask(self, x: torch.Tensor, code: int) -> torch.Tensor:
        mask = x.new_zeros(x.shape[0], len(self.options))
        mask[:, code] = 1
        return mask

    def forward(
        self,
        x: torch.Tensor,
        fixed_code: int | None = None,
        gate_stage: bool = False,
        sync_free: bool = False,
        sample_gates: bool = False,
    ) -> GatedOutput:
        """Training: the all-candidates mix (``gate_stage``: the reference's gate-stage forward; ``sample_gates``:
        SkipNet's sampled decisions); evaluation: only the chosen option of each input. One entry point, so
        DistributedDataParallel sees every training forward."""
        if self.training:
            if gate_stage:
                return self.forward_gate_stage(x)
            return self.forward_candidates(x, fixed_code=fixed_code, sync_free=sync_free, sample_gates=sample_gates)
        return self.forward_grouped(x, fixed_code=fixed_code)

    def forward_candidates_reference(
        self, x: torch.Tensor, fixed_code: int | None = None, naive: bool = False
    ) -> GatedOutput:
        """The plain path: every option computed on the whole batch and mixed by the mask; ``naive`` keeps all of
        them in the graph."""

        def run_block(block: GatedBasicBlock, x: torch.Tensor, mask: torch.Tensor):
            shortcut = block.shortcut(x)
            chosen = set(mask.detach().argmax(dim=1).unique().tolist())
            out = None
            for k, option in enumerate(self.options):
                if naive or k in chosen:
                    candidate = block.candidate(x, shortcut, option)
                else:
                    with torch.no_grad():
                        candidate = block.candidate(x, shortcut, option)
                term = mask[:, k].view(-1, 1, 1, 1) * candidate
                out = term if out is None else out + term
            return out, mask

        return self._gated_forward(x, fixed_code, run_block)

    def forward_candidates(
        self, x: torch.Tensor, fixed_code: int | None = None, sync_free: bool = False, sample_gates: bool = False
    ) -> GatedOutput:
        """The training forward: the reference's values and gradients, with shared quantization and one mix;
        ``sample_gates`` draws SkipNet's decisions instead of thresholding them."""

        def run_block(block: GatedBasicBlock, x: torch.Tensor, mask: torch.Tensor):
            if sync_free:
                with_grad = [True] * len(self.options)
            else:
                chosen = set(mask.detach().argmax(dim=1).unique().tolist())
                with_grad = [k in chosen for k in range(len(self.options))]
            candidates = block.candidates(x, block.shortcut(x), self.options, with_grad)
            return mix_candidates(mask, candidates), mask

        return self._gated_forward(x, fixed_code, run_block, sample_gates)

    def forward_gate_stage(self, x: torch.Tensor) -> GatedOutput:
        """The reference's gate stage: the backbone at full precision under ``no_grad`` (it is frozen), the gates
        run on each gated block's input. Only the gates are in the graph; the masks do not change the output."""
        fp = self.options[self.fp_code]
        with torch.no_grad():
            x = self._head(x)
        masks, probs, state = [], [], None
        for b, block in enumerate(self.blocks):
            mask, prob, state = self.controller.step(self.gate_embeddings[b](x), state)
            masks.append(mask)
            probs.append(prob)
            with torch.no_grad():
                x = block(x, fp)
        with torch.no_grad():
            logits = self._tail(x)
        return GatedOutput(logits, torch.stack(masks, dim=1), torch.stack(probs, dim=1))

    def forward_grouped(
        self,
        x: torch.Tensor,
        fixed_code: int | None = None,
        measure_precision: bool = False,
        precision_positions: int = 1,
    ) -> GatedOutput:
        """Group the batch by chosen option and run each group at its option only (use in eval mode);
        ``measure_precision``: also return the bits each decision's activations needed (``GatedOutput.precision``),
        in groups of 16 channels × ``precision_positions`` positions (``dfs_sim.model.precision``)."""
        measured: list[torch.Tensor] = []

        def run_block(block: GatedBasicBlock, x: torch.Tensor, mask: torch.Tensor):
            codes = mask.detach().argmax(dim=1)
            shortcut = block.shortcut(x)
            out = None
            needed = x.new_zeros(x.shape[0], dtype=torch.float64) if measure_precision else None
            for k in codes.unique().tolist():
                index = (codes == k).nonzero().squeeze(1)
                meter = PrecisionMeter(precision_positions) if measure_precision else None
                part = block.candidate(
                    x.index_select(0, index), shortcut.index_select(0, index), self.options[k], meter
                )
                if out is None:
                    out = part.new_zeros((x.shape[0], *part.shape[1:]))
                out = out.index_copy(0, index, part)
                bits = meter.block_bits() if meter is not None else None
                if needed is not None and bits is not None:
                    needed = needed.index_copy(0, index, bits)
            if needed is not None:
                measured.append(needed)
            return out, F.one_hot(codes, len(self.options)).to(out.dtype)

        fixed = self.static_option if fixed_code is None else fixed_code
        if fixed is not None:
            return self._forward_fixed(x, fixed, measure_precision, precision_positions)
        output = self._gated_forward(x, None, run_block)
        return output._replace(precision=torch.stack(measured, dim=1)) if measure_precision else output

    def _gated_forward(self, x: torch.Tensor, fixed_code: int | None, run_block, sample: bool = False) -> GatedOutput:
        """The gate loop of both paths: ``run_block(block, x, mask)`` returns the block's output and the mask to record.

        A fixed code (``fixed_code``, else ``static_option``) runs no gate at all; ``sample`` draws the sigmoid gate's
        decisions."""
        if sample and self.gate != "sigmoid":
            raise ConfigError("GatedResNet", "only the sigmoid (SkipNet) gate samples its decisions")
        fixed = self.static_option if fixed_code is None else fixed_code
        if fixed is not None:
            return self._forward_fixed(x, fixed)
        x = self._head(x)
        masks, probs, state = [], [], None
        for b, block in enumerate(self.blocks):
            feature = self.gate_embeddings[b](x)
            if sample:
                mask, prob, state = self.controller.step(feature, state, sample=True)
            else:
                mask, prob, state = self.controller.step(feature, state)
            x, recorded = run_block(block, x, mask)
            masks.append(recorded)
            probs.append(prob)
        return self._output(x, masks, probs)

    def _forward_fixed(
        self, x: torch.Tensor, code: int | Sequence[int], measure_precision: bool = False, precision_positions: int = 1
    ) -> GatedOutput:
        """Every gated block at one option, or each at its own (a code per block), and no gate run (static
        baselines, backbone training)."""
        codes = [code] * self.num_gated if isinstance(code, int) else list(code)
        x = self._head(x)
        measured = []
        for block, block_code in zip(self.blocks, codes, strict=True):
            meter = PrecisionMeter(precision_positions) if measure_precision else None
            x = block(x, self.options[block_code], meter)
            if meter is not None:
                bits = meter.block_bits()
                measured.append(bits if bits is not None else x.new_zeros(x.shape[0], dtype=torch.float64))
        output = self._output(x, [self._fixed_mask(x, c) for c in codes], [])
        return output._replace(precision=torch.stack(measured, dim=1)) if measure_precision else output

    def _output(self, x: torch.Tensor, masks: list, probs: list) -> GatedOutput:
        logits = self._tail(x)
        stacked = torch.stack(masks, dim=1) if masks else logits.new_zeros(logits.shape[0], 0, len(self.options))
        return GatedOutput(logits, stacked, torch.stack(probs, dim=1) if probs else None)


# --------------------------------------------------------------------------------------------------------------------
def _compute_layers(model: GatedResNet):
    """(name, module, call index, kind, unit) of every compute layer, in layer-table order; ``unit`` is
    ``(block name, rest of the row's name)`` for a row of a gated block (``UnitNumbering`` places it), else None.

    A static model runs no gate, so its gates are not compute layers."""
    rows: list[tuple[str, nn.Module, int, str, tuple[str, str] | None]] = [("stem", model.stem, 0, "conv", None)]
    all_blocks = [model.first_block, *model.blocks]
    for position, (name, block) in enumerate(zip(model.block_names, all_blocks, strict=True)):
        gated = position > 0
        b = position - 1
        if gated and model.static_option is None:
            rows += [
                (f"gate{b}.conv", model.gate_embeddings[b].conv, 0, "gate", None),
                (f"gate{b}.lstm", model.controller.lstm, b, "gate", None),
                (f"gate{b}.fc", model.controller.fc, b, "gate", None),
            ]
        parts = [("conv1", block.conv1), ("conv2", block.conv2)]
        if block.projection is not None:
            parts.append(("projection", block.projection[0]))
        rows += [(f"{name}.{part}", module, 0, "conv", (name, f".{part}") if gated else None) for part, module in parts]
    rows.append(("fc", model.fc, 0, "linear", None))
    return rows


def declared_layer_table(model: GatedResNet, input_size: int = 32) -> LayerTable:
    """The ``cifar_resnet_layers`` table ``model`` should have (its depth, classes, options, gate and input), without
    running it; ``traced_layer_table`` observes the same table from a forward pass."""
    return cifar_resnet_layers(
        model.depth,
        num_classes=model.num_classes,
        options=model.options,
        gates=model.static_option is None,
        gate_outputs=1 if model.gate == "sigmoid" else None,
        input_size=input_size,
        in_channels=model.in_channels,
    )


def traced_layer_table(model: GatedResNet, input_size: int = 32) -> LayerTable:
    """The model's layer table, with every shape observed by forward hooks on one all-candidates forward pass."""
    rows = _compute_layers(model)
    seen: dict[int, list[tuple[int, ...]]] = {}

    def hook(module, inputs, _output):
        seen.setdefault(id(module), []).append(tuple(inputs[0].shape))

    handles = [module.register_forward_hook(hook) for module in {id(row[1]): row[1] for row in rows}.values()]
    was_training = model.training
    try:
        model.eval()
        device = next(model.parameters()).device
        with torch.no_grad():
            model.forward_candidates_reference(
                torch.zeros(1, model.in_channels, input_size, input_size, device=device), naive=True
            )
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    layers = []
    numbering = UnitNumbering(model.fp_code)
    for name, module, call, kind, unit in rows:
        placed = numbering.place(unit)
        shape = seen[id(module)][call]
        if isinstance(module, nn.Conv2d):
            _, in_ch, in_h, in_w = shape
            layer = ConvLayer(
                in_ch,
                module.out_channels,
                in_h,
                in_w,
                module.kernel_size[0],
                module.stride[0],
                module.padding[0],
                module.groups,
                name=name,
                kind=kind,
                **placed,
            )
        else:
            if isinstance(module, nn.LSTM):  # one step: the four gates over [input, hidden] → a 2E → 4E linear layer
                in_ch, out_ch = shape[-1] + module.hidden_size, 4 * module.hidden_size
            else:
                in_ch, out_ch = shape[-1], module.out_features
            layer = ConvLayer(in_ch, out_ch, 1, 1, 1, name=name, kind=kind, **placed)
        layers.append(layer)
    return LayerTable(layers, source=f"traced {type(model).__name__}(depth={model.depth})")
