"""Device selection and mixed precision; nothing here hard-codes CUDA."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

from hmgdm_core.errors import InputError

__all__ = ["autocast", "resolve_device"]


def resolve_device(spec: str) -> torch.device:
    """Turn ``auto``, ``cpu``, ``cuda``, ``cuda:<i>`` or ``mps`` into an available device.

    ``auto`` picks CUDA, then MPS, then the CPU. Asking for an absent accelerator is an :class:`InputError`.
    Under ``torchrun`` (``LOCAL_RANK`` set), ``cuda`` and ``auto`` mean the GPU of the process's local
    rank, so that each process of a node drives its own GPU.
    """
    if spec == "auto":
        if torch.cuda.is_available():
            return _local_gpu(torch.device("cuda"))
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as error:
        raise InputError(f"unknown device {spec!r}: use auto, cpu, cuda, cuda:<i> or mps") from error
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device {spec!r} requested but CUDA is not available: use 'cpu' or 'auto'")
        device = _local_gpu(device)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InputError(f"device {spec!r} does not exist: {torch.cuda.device_count()} CUDA device(s)")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError("device 'mps' requested but MPS is not available: use 'cpu' or 'auto'")
    elif device.type not in {"cpu", "cuda", "mps"}:
        raise InputError(f"unsupported device {spec!r}: use auto, cpu, cuda, cuda:<i> or mps")
    return device


def _local_gpu(device: torch.device) -> torch.device:
    """``cuda`` without an index as ``cuda:LOCAL_RANK`` under torchrun (else every process would share GPU 0)."""
    if device.index is None and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


@contextlib.contextmanager
def autocast(device: torch.device, precision: str) -> Iterator[None]:
    """Autocast to bf16/fp16 on CUDA; fp32 everywhere else (anything else is an :class:`InputError`)."""
    if precision == "fp32":
        yield
        return
    if precision not in {"bf16", "fp16"}:
        raise InputError(f"unknown precision {precision!r}: use fp32, bf16 or fp16")
    if device.type != "cuda":
        raise InputError(
            f"{precision} autocast is only supported on CUDA (on CPU it is emulated and far slower): use fp32"
        )
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    with torch.autocast("cuda", dtype=dtype):
        yield
