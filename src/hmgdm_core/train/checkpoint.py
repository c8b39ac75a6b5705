"""Checkpoints: state dicts + JSON config + metadata, written atomically, read with ``weights_only=True``."""

from __future__ import annotations

import hashlib
import json
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch_geometric
from torch_geometric.data import Data

from hmgdm_core.errors import InputError
from hmgdm_core.graph.dataset import GraphDataset
from hmgdm_core.io.atomic import atomic_path, write_text_atomic
from hmgdm_core.model import HMGDM
from hmgdm_core.train.config import PretrainConfig

__all__ = [
    "Checkpoint",
    "checkpoint_path",
    "data_fingerprint",
    "feature_space",
    "latest_checkpoint",
    "load_checkpoint",
    "prune_checkpoints",
    "resolve_checkpoint",
    "save_checkpoint",
]

FORMAT_VERSION = 1
_PAYLOAD = {"model": dict, "optimizer": dict, "lr": dict, "config": str, "meta": dict}
_PREFIX = "checkpoint-"


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint."""

    model: HMGDM
    """The network with its weights, in eval mode, on the requested device."""
    config: PretrainConfig
    """The run's configuration."""
    meta: dict[str, Any]
    """Versions, seed, data fingerprint, step, epoch and loop counters."""
    optimizer_state: dict[str, Any]
    """Adam's state dict (for resuming)."""
    lr_state: dict[str, Any]
    """Learning-rate controller state (for resuming)."""


def data_fingerprint(dataset: Sequence[Data]) -> str:
    """SHA-256 over every graph's node and edge counts and its first node and edge feature rows.

    Cheap enough for large datasets (no full feature hash), strong enough to catch a resume on other data.
    """
    digest = hashlib.sha256(str(len(dataset)).encode())
    for index in range(len(dataset)):
        if isinstance(dataset, GraphDataset):
            # From the stored form: the counts without a graph, and two windows cut instead of all of them.
            (nodes, edges), rows = dataset.counts(index), dataset.first_rows(index)
        else:
            graph = dataset[index]
            nodes, edges = graph.num_nodes, graph.edge_index.shape[1]
            rows = (graph.x[:1], graph.edge_attr[:1])
        digest.update(f"{nodes},{edges};".encode())
        for row in rows:
            digest.update(row.detach().cpu().to(torch.float32).numpy().tobytes())
    return digest.hexdigest()


def feature_space(dataset: Sequence[Data]) -> dict[str, Any]:
    """What the features of ``dataset`` are, recorded in every checkpoint so embedding can refuse other inputs.

    Raw windows are 3·w² numbers in [-1, 1]; anything else (wider values or another width) is taken for the
    latents of a stage-1 VAE. Input standardisation statistics travel in the weights (``node_mean`` …).

    Returns
    -------
    dict
        ``kind`` (``"raw windows"`` or ``"latents"``), ``feature_dim`` F and, for raw windows, ``window`` w.
    """
    width = int(dataset[0].x.shape[1])
    side = round((width / 3) ** 0.5)
    bounded = all(
        float(g.x.abs().max()) <= 1.0 + 1e-6 for g in (dataset[i] for i in range(min(64, len(dataset)))) if g.num_nodes
    )
    if 3 * side * side == width and bounded:
        return {"kind": "raw windows", "feature_dim": width, "window": side}
    return {"kind": "latents", "feature_dim": width}


def save_checkpoint(
    path: Path,
    model: HMGDM,
    config: PretrainConfig,
    meta: dict[str, Any],
    optimizer_state: dict[str, Any],
    lr_state: dict[str, Any],
) -> Path:
    """Write a checkpoint atomically: a temporary file in the same folder, then ``os.replace``.

    A crash or cancel while writing never leaves a truncated file under ``path``; older checkpoints stay intact.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT_VERSION,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer_state,
        "lr": lr_state,
        "config": config.to_json(),
        "meta": {
            **meta,
            "hmgdm_version": _package_version(),
            "torch": str(torch.__version__),
            "torch_geometric": torch_geometric.__version__,
            "python": platform.python_version(),
        },
    }
    with atomic_path(path) as temporary:
        torch.save(payload, temporary)
    write_text_atomic(path.parent / "config.json", config.to_json())
    return path


def load_checkpoint(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> Checkpoint:
    """Read a checkpoint with ``torch.load(weights_only=True)`` (no pickled code runs).

    Parameters
    ----------
    path : str or PathLike
        A ``checkpoint-*.pt`` file, or a run folder (its latest checkpoint is read).
    device : torch.device or str
        Where to put the model.

    Returns
    -------
    Checkpoint
    """
    path = resolve_checkpoint(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any unpickling failure means the file is not a usable checkpoint
        raise InputError(f"{path} is not a readable H-MGDM checkpoint ({error})") from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
        raise InputError(f"{path} is not an H-MGDM checkpoint of format {FORMAT_VERSION}")
    missing = [k for k, kind in _PAYLOAD.items() if not isinstance(payload.get(k), kind)]
    if missing:
        raise InputError(f"{path} is an incomplete checkpoint (no valid {', '.join(missing)}): use another one")
    config = PretrainConfig.from_json(_with_legacy_inputs(payload["config"]))
    model = HMGDM(config.model)
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as error:  # missing, unexpected or mis-shaped tensors
        raise InputError(f"{path}: its weights do not fit its own model config ({_first_line(error)})") from None
    return Checkpoint(model.to(device).eval(), config, payload["meta"], payload["optimizer"], payload["lr"])


def resume_states(
    path: str | os.PathLike[str], model: HMGDM, optimizer: torch.optim.Optimizer, learning_rate: Any, state: Checkpoint
) -> None:
    """Load a checkpoint's weights, optimiser and learning-rate states into a run; :class:`InputError` if unfit."""
    try:
        model.load_state_dict(state.model.state_dict())
        optimizer.load_state_dict(state.optimizer_state)
        learning_rate.load_state_dict(state.lr_state)
    except (RuntimeError, ValueError, KeyError, TypeError) as error:
        raise InputError(f"{path} cannot be resumed with this model ({_first_line(error)})") from None


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return " ".join(lines[:2])[:300] or type(error).__name__


def resolve_checkpoint(path: str | os.PathLike[str]) -> Path:
    """The checkpoint file ``path`` names: itself, or a run folder's latest; an :class:`InputError` if none."""
    path = Path(path)
    if path.is_dir():
        found = latest_checkpoint(path)
        if found is None:
            raise InputError(f"no {_PREFIX}*.pt in {path}: pass a checkpoint file or a pretraining output folder")
        path = found
    if not path.is_file():
        raise InputError(f"checkpoint {path} does not exist")
    return path


def prune_checkpoints(out_dir: str | os.PathLike[str], keep_last: int, protected: set[Path]) -> list[Path]:
    """Delete all but the ``keep_last`` latest ``checkpoint-*.pt`` of ``out_dir`` and the ``protected`` ones.

    Parameters
    ----------
    out_dir : str or PathLike
        A run folder.
    keep_last : int
        Latest checkpoints kept (≥ 1).
    protected : set of Path
        Checkpoints never deleted (the best one, the one a run resumed from).

    Returns
    -------
    list of Path
        The deleted files.
    """
    if keep_last < 1:
        raise InputError(f"keep_last must be at least 1 (or None to keep every checkpoint), got {keep_last}")
    keep = {p.resolve() for p in protected}
    found = sorted(Path(out_dir).glob(f"{_PREFIX}*.pt"))
    deleted = [p for p in found[:-keep_last] if p.resolve() not in keep]
    for path in deleted:
        path.unlink(missing_ok=True)
    return deleted


# Checkpoints written before the input-pipeline switches existed used the released pipeline, not today's defaults.
_LEGACY_INPUTS = {"input_layernorm": True, "standardise_inputs": False, "encoder_mask_token": False}


def _with_legacy_inputs(config_json: str) -> str:
    data = json.loads(config_json)
    model = data.setdefault("model", {})
    if "input_layernorm" not in model:
        data["model"] = {**_LEGACY_INPUTS, **model}
    return json.dumps(data)


def checkpoint_path(out_dir: Path, step: int) -> Path:
    """``out_dir/checkpoint-<step, 8 digits>.pt``."""
    return Path(out_dir) / f"{_PREFIX}{step:08d}.pt"


def latest_checkpoint(out_dir: str | os.PathLike[str]) -> Path | None:
    """The checkpoint with the most steps in ``out_dir``, or ``None``."""
    found = sorted(Path(out_dir).glob(f"{_PREFIX}*.pt"))
    return found[-1] if found else None


def _package_version() -> str:
    from hmgdm_core import __version__

    return __version__
