"""Device selection and mixed precision; nothing here hard-codes CUDA."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

from hmgdm_core.errors import InputError

__all__ = ["autocast", "cpu_has_native_bf16", "precisions", "resolve_device"]


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


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (AVX512-BF16 or AMX), so that bf16 autocast is faster.

    Without it oneDNN emulates bf16, which is far slower than fp32.
    """
    if not torch.backends.mkldnn.is_available():
        return False
    try:  # a private op of torch's oneDNN build; a build without it offers no bf16 on the CPU
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def precisions(device: torch.device) -> tuple[str, ...]:
    """The ``TrainConfig.precision`` values that train on ``device``, fp32 first.

    fp32 everywhere; bf16 and fp16 on CUDA (bf16 only where the GPU supports it); bf16 on a CPU with bf16 in
    hardware (:func:`cpu_has_native_bf16`). :func:`autocast` accepts exactly these.
    """
    if device.type == "cuda":
        return ("fp32", "bf16", "fp16") if torch.cuda.is_bf16_supported() else ("fp32", "fp16")
    if device.type == "cpu" and cpu_has_native_bf16():
        return ("fp32", "bf16")
    return ("fp32",)


@contextlib.contextmanager
def autocast(device: torch.device, precision: str) -> Iterator[None]:
    """Autocast to bf16/fp16 where :func:`precisions` offers it; fp32 needs nothing.

    Anything else is an :class:`InputError`: fp16 on a CPU, bf16 on a CPU that would emulate it (far slower than
    fp32), or an unknown name. Autocast keeps the weights, their gradients and the optimiser in fp32.
    """
    if precision == "fp32":
        yield
        return
    if precision not in {"bf16", "fp16"}:
        raise InputError(f"unknown precision {precision!r}: use fp32, bf16 or fp16")
    if precision not in precisions(device):
        if device.type == "cpu" and precision == "bf16":
            raise InputError(
                "bf16 on this CPU would be emulated (no AVX512-BF16 or AMX) and far slower than fp32: use fp32"
            )
        raise InputError(
            f"{precision} autocast is not supported on {device} (it is on CUDA, and bf16 on CPUs with native bf16): "
            "use fp32"
        )
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    with torch.autocast(device.type, dtype=dtype):
        yield
