"""Device selection and mixed precision; nothing here hard-codes CUDA."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from hmgdm_core.errors import InputError

__all__ = ["autocast", "resolve_device"]


def resolve_device(spec: str) -> torch.device:
    """Turn ``auto``, ``cpu``, ``cuda``, ``cuda:<i>`` or ``mps`` into an available device.

    ``auto`` picks CUDA, then MPS, then the CPU. Asking for an absent accelerator is an :class:`InputError`.
    """
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
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
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InputError(f"device {spec!r} does not exist: {torch.cuda.device_count()} CUDA device(s)")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError("device 'mps' requested but MPS is not available: use 'cpu' or 'auto'")
    elif device.type not in {"cpu", "cuda", "mps"}:
        raise InputError(f"unsupported device {spec!r}: use auto, cpu, cuda, cuda:<i> or mps")
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
