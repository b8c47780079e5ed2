"""Training on several processes (``torchrun``) that computes what one process computes on the global batch.

``Distributed`` reads torchrun's environment (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``); without it everything here
is a no-op. Each process takes an equal share of every global batch (``share``); gradients are averaged by
DistributedDataParallel (``wrap``). Two statistics of the forward depend on the whole batch, and both are computed
over the global batch, not the process's share:
- BatchNorm's batch mean and variance (``BatchNorm2d``, differentiable all-reduce; torch's SyncBatchNorm does the
  same but runs on GPUs only, and the project's multi-process test runs on CPUs with gloo);
- the activation quantizer's per-sample extremes averaged over the batch (``global_mean``).
The sign of the budget term uses the global batch's computation percentage (``Distributed.mean``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist
from torch import nn

__all__ = ["BatchNorm2d", "Distributed", "global_mean", "is_multiprocess"]


def is_multiprocess() -> bool:
    return torch_dist.is_available() and torch_dist.is_initialized() and torch_dist.get_world_size() > 1


@torch.no_grad()
def global_mean(values: torch.Tensor) -> torch.Tensor:
    """The mean of ``values`` (a 1-D tensor of per-input numbers) over the global batch."""
    if not is_multiprocess():
        return values.mean()
    total = torch.stack([values.sum(), values.new_tensor(values.numel())])
    torch_dist.all_reduce(total)
    return total[0] / total[1]


class BatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` whose training statistics are those of the global batch when several processes train."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_multiprocess()):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        # statistics in fp32 as native BatchNorm keeps them (under bf16 autocast x is bf16, and E[x²] − mean² would
        # cancel catastrophically); the output goes back to x's dtype
        dtype, x = x.dtype, x.float()
        channels = x.shape[1]
        moments = torch.cat([x.sum(dim=(0, 2, 3)), (x * x).sum(dim=(0, 2, 3)), x.new_tensor([x.numel() // channels])])
        moments = all_reduce(moments)  # differentiable: the backward all-reduces the moments' gradients
        count = moments[-1]
        mean = moments[:channels] / count
        var = moments[channels : 2 * channels] / count - mean * mean
        if self.track_running_stats:
            with torch.no_grad():
                momentum = 0.1 if self.momentum is None else self.momentum
                self.running_mean.mul_(1 - momentum).add_(mean.detach() * momentum)
                self.running_var.mul_(1 - momentum).add_(var.detach() * (count / (count - 1)) * momentum)
                self.num_batches_tracked.add_(1)
        shape = (1, channels, 1, 1)
        out = (x - mean.view(shape)) * torch.rsqrt(var + self.eps).view(shape)
        out = out * self.weight.view(shape) + self.bias.view(shape) if self.affine else out
        return out.to(dtype)


@dataclass(frozen=True)
class Distributed:
    """This process's place among ``world_size`` training processes (one process: rank 0 of 1)."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    @classmethod
    def from_environment(cls) -> Distributed:
        def number(key: str, default: int) -> int:
            try:
                return int(os.environ.get(key, default))
            except ValueError:
                return default

        return cls(number("WORLD_SIZE", 1), number("RANK", 0), number("LOCAL_RANK", 0))

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def start(self, device: torch.device) -> None:
        if self.active and not torch_dist.is_initialized():
            if device.type == "cuda":
                torch.cuda.set_device(device)
            torch_dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    def stop(self) -> None:
        if self.active and torch_dist.is_initialized():
            torch_dist.destroy_process_group()

    def barrier(self) -> None:
        if self.active:
            torch_dist.barrier()

    def share(self, batch: torch.Tensor) -> torch.Tensor:
        """This process's equal share of a global batch."""
        return batch.chunk(self.world_size)[self.rank] if self.active else batch

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """A per-process mean (e.g. a percentage over the process's share) averaged over the processes."""
        if not self.active:
            return value
        total = value.detach().clone()
        torch_dist.all_reduce(total)
        return total / self.world_size

    def wrap(self, model: nn.Module) -> nn.Module:
        """DistributedDataParallel over the parameters this stage trains (re-wrapped per stage: they change)."""
        if not self.active:
            return model
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.local_rank] if next(model.parameters()).device.type == "cuda" else None
        # sync_free puts every candidate in the graph, so no trainable weight should go unused; the search for unused
        # ones (one graph walk per iteration) is kept as a safeguard for paths that leave one out. Buffers are equal
        # on every process already (BatchNorm statistics are global).
        return DistributedDataParallel(
            model, device_ids=device_ids, find_unused_parameters=True, broadcast_buffers=False
        )
