"""Turn a training checkpoint into a bundled model: weights only, half precision when that changes nothing."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Data

from hmgdm_core.embed import embed_dataset
from hmgdm_core.errors import InputError
from hmgdm_core.io.atomic import atomic_path, write_text_atomic
from hmgdm_core.pretrained.registry import file_sha256, models_dir
from hmgdm_core.train.checkpoint import latest_checkpoint, load_checkpoint

__all__ = ["FP16_TOLERANCE", "MAX_BUNDLED_BYTES", "embedding_difference", "export_pretrained"]

MAX_BUNDLED_BYTES = 25_000_000
"""Budget of all bundled weights files together (the wheel must stay small)."""
FP16_TOLERANCE = 1e-2
"""Largest relative change ‖e16 − e32‖ / ‖e32‖ of the patch embeddings for which weights are stored in fp16.
fp16 keeps 11 significant bits (rounding ≤ 4.9e-4 per weight); through the network's layers that gives patch
embeddings changed by a few 1e-3 (2.4e-3 measured on the first bundled model, 2.3e-4 at random init). A 1 %
perturbation of standardised features is far below what a linear probe resolves (its fold-to-fold spread on
Kather is several % of macro-F1), while a real loss of precision (e.g. fp16 overflow) shows up as ≫ 1 %."""


def _stored(payload: dict[str, Any], half: bool) -> dict[str, Any]:
    model = {k: v.half() if half and v.is_floating_point() else v for k, v in payload["model"].items()}
    # Optimiser and LR state are for resuming one run; a bundled model starts new runs (``init``), not resumes.
    return {**payload, "model": model, "optimizer": {}, "lr": {}}


def embedding_difference(fp32_checkpoint: Path, stored_checkpoint: Path, graphs: Sequence[Data]) -> float:
    """Relative Frobenius difference ‖e_s − e_32‖ / ‖e_32‖ of the (G, W) patch embeddings of two checkpoints."""
    reference = embed_dataset(load_checkpoint(fp32_checkpoint).model, graphs, device="cpu").patch
    stored = embed_dataset(load_checkpoint(stored_checkpoint).model, graphs, device="cpu").patch
    return float(np.linalg.norm(stored - reference) / max(np.linalg.norm(reference), 1e-12))


def export_pretrained(
    checkpoint: str | os.PathLike[str],
    name: str,
    card: dict[str, Any],
    probe_graphs: Sequence[Data],
    out_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Write ``<name>.pt`` (weights, config, meta) and its card ``<name>.json`` into the models folder.

    The weights are stored in fp16 when the patch embeddings of ``probe_graphs`` change by at most
    :data:`FP16_TOLERANCE` (relative), else in fp32; the measured difference goes into the card. Both files
    are written atomically.

    Parameters
    ----------
    checkpoint : str or PathLike
        A training checkpoint (``checkpoint-*.pt``) or run folder.
    name : str
        The bundled name (file stem; letters, digits, ``-`` and ``_``).
    card : dict
        Card fields to record (training data, recipe, steps, hardware, ...); ``name``, ``file``, ``sha256``,
        ``bytes``, ``dtype``, ``config`` and ``fp16_embedding_difference`` are filled here.
    probe_graphs : sequence of Data
        A few real graphs for the fp16 check.
    out_dir : str or PathLike, optional
        Defaults to the package's models folder.

    Returns
    -------
    Path
        The written weights file.

    Raises
    ------
    InputError
        For a bad name, or when the bundled weights (``.pt`` files with a ``.json`` card in ``out_dir``) would
        exceed :data:`MAX_BUNDLED_BYTES` together.
    """
    if not name or not all(c.isalnum() or c in "-_" for c in name):
        raise InputError(f"bundled model name {name!r}: use letters, digits, '-' and '_'")
    out = Path(out_dir) if out_dir is not None else models_dir()
    path = Path(checkpoint)
    if path.is_dir():
        path = latest_checkpoint(path) or path
    load_checkpoint(path)  # a clear InputError for anything that is not a readable checkpoint
    payload = torch.load(path, map_location="cpu", weights_only=True)
    with tempfile.TemporaryDirectory() as scratch:
        half = Path(scratch) / "half.pt"
        torch.save(_stored(payload, half=True), half)
        difference = embedding_difference(path, half, probe_graphs)
    stored = _stored(payload, half=difference <= FP16_TOLERANCE)
    target = out / f"{name}.pt"
    with atomic_path(target) as temporary:
        torch.save(stored, temporary)
        size = temporary.stat().st_size
        # Bundled models are weights with a card (what list_pretrained shows); other .pt files in the folder,
        # such as checkpoints copied beside them, are not shipped and do not count.
        others = sum(
            p.stat().st_size for p in out.glob("*.pt") if p.name != target.name and p.with_suffix(".json").is_file()
        )
        if size + others > MAX_BUNDLED_BYTES:
            raise InputError(
                f"{name}.pt would be {size / 1e6:.1f} MB; with the other bundled models "
                f"{(size + others) / 1e6:.1f} MB > {MAX_BUNDLED_BYTES / 1e6:.0f} MB: choose a narrower network"
            )
    record = {
        **card,
        "name": name,
        "file": target.name,
        "sha256": file_sha256(target),
        "bytes": target.stat().st_size,
        "dtype": "float16" if difference <= FP16_TOLERANCE else "float32",
        "fp16_embedding_difference": difference,
        "config": json.loads(payload["config"]),
    }
    write_text_atomic(out / f"{name}.json", json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return target
