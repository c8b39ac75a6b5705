"""Data-parallel context: the same loop under ``torchrun`` (gloo on CPU, NCCL on CUDA)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["ProcessGroup", "join_process_group"]


@dataclass(frozen=True)
class ProcessGroup:
    """Where this process stands in the run."""

    rank: int
    """0 … world_size-1; only rank 0 writes files."""
    world_size: int
    """Processes sharing each global batch."""

    @property
    def is_writer(self) -> bool:
        """Whether this process writes checkpoints."""
        return self.rank == 0

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """``DistributedDataParallel`` around ``model`` when there are several processes, else ``model``."""
        if self.world_size == 1:
            return model
        device_ids = [device.index or 0] if device.type == "cuda" else None
        # Some steps leave a branch without inputs (no target edge, no context key), hence unused parameters.
        return nn.parallel.DistributedDataParallel(model, device_ids=device_ids, find_unused_parameters=True)

    def any(self, flag: bool, device: torch.device) -> bool:
        """Whether ``flag`` is true on any process (all processes must call it)."""
        if self.world_size == 1:
            return flag
        value = torch.tensor([float(flag)], device=device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())


def join_process_group(device: torch.device) -> ProcessGroup:
    """Join the ``torchrun`` process group named by ``WORLD_SIZE``/``RANK``, or stand alone.

    Uses NCCL when the device is CUDA and gloo otherwise; an already initialised group is reused.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1 and not dist.is_initialized():
        return ProcessGroup(rank=0, world_size=1)
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)  # NCCL places each rank's communicator on the current device
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return ProcessGroup(rank=dist.get_rank(), world_size=dist.get_world_size())
