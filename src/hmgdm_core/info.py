"""The environment report printed by ``hmgdm info``: paste it into every bug report."""

from __future__ import annotations

import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version

__all__ = ["environment_report", "format_report"]

_PACKAGES = ("napari-hmgdm", "torch", "torch-geometric", "numpy", "scipy", "scikit-image", "tifffile",
             "imagecodecs", "zarr", "dask", "napari", "npe2", "magicgui", "qtpy", "PyQt6", "PySide6")


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def environment_report() -> dict:
    """Versions and compute devices, as a JSON-able dict.

    Napari and Qt are looked up by their installed metadata only, never imported, so the
    report works (and stays fast) on a headless machine.

    Returns
    -------
    dict
        ``python``, ``platform``, ``packages`` (name → version or None), ``cpu`` (logical
        cores, torch threads, interop threads, ``native_bf16``: whether ``--precision bf16`` runs on it),
        ``cuda`` (available, version, per-GPU name and total memory in GiB), ``mps`` (available).
    """
    import torch

    from hmgdm_core.train.device import cpu_has_native_bf16

    gpus = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            gpus.append({"index": index, "name": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
                         "capability": f"{props.major}.{props.minor}"})
    mps = getattr(torch.backends, "mps", None)
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": {name: _version(name) for name in _PACKAGES},
        "cpu": {
            "logical_cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch_interop_threads": torch.get_num_interop_threads(),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "native_bf16": cpu_has_native_bf16(),
        },
        "cuda": {"available": torch.cuda.is_available(), "version": torch.version.cuda, "gpus": gpus},
        "mps": {"available": bool(mps is not None and mps.is_available())},
    }


def format_report(report: dict) -> str:
    """Render :func:`environment_report` as aligned text lines."""
    lines = [f"python       {report['python']}", f"platform     {report['platform']}", "packages"]
    for name, ver in report["packages"].items():
        lines.append(f"  {name:<16} {ver or 'not installed'}")
    cpu = report["cpu"]
    lines.append(
        f"cpu          {cpu['logical_cores']} logical cores, torch threads {cpu['torch_threads']} "
        f"(interop {cpu['torch_interop_threads']}), OMP_NUM_THREADS={cpu['OMP_NUM_THREADS']}, "
        + ("bf16 in hardware (--precision bf16 offered)" if cpu["native_bf16"] else "no bf16 in hardware")
    )
    cuda = report["cuda"]
    if cuda["available"]:
        lines.append(f"cuda         {cuda['version']}, {len(cuda['gpus'])} GPU(s)")
        for g in cuda["gpus"]:
            lines.append(f"  cuda:{g['index']}  {g['name']}, {g['memory_gib']} GiB, sm {g['capability']}")
    else:
        built = f" (torch built for CUDA {cuda['version']})" if cuda["version"] else ""
        lines.append("cuda         not available" + built)
    lines.append(f"mps          {'available' if report['mps']['available'] else 'not available'}")
    return "\n".join(lines)
