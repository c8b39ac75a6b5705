"""The registry of bundled checkpoints: ``models/<name>.pt`` beside its card ``models/<name>.json``."""

from __future__ import annotations

import hashlib
import json
import os
from importlib.resources import files
from pathlib import Path
from typing import Any

import torch

from hmgdm_core.errors import InputError
from hmgdm_core.train.checkpoint import Checkpoint, load_checkpoint
from hmgdm_core.train.config import PretrainConfig

__all__ = [
    "DEFAULT_PRETRAINED",
    "file_sha256",
    "list_pretrained",
    "load_pretrained",
    "model_card",
    "models_dir",
    "pretrained_config",
    "pretrained_path",
    "resolve_checkpoint",
]

DEFAULT_PRETRAINED = "hmgdm-kather-cmu1"
"""The model the napari widgets and ``hmgdm demo`` start from."""


def models_dir() -> Path:
    """The package folder holding the bundled ``<name>.pt`` files and their ``<name>.json`` cards."""
    return Path(str(files("hmgdm_core") / "pretrained" / "models"))


def list_pretrained() -> list[str]:
    """Names of the bundled models (those with both a card and a weights file), sorted."""
    return sorted(card.stem for card in models_dir().glob("*.json") if card.with_suffix(".pt").is_file())


def model_card(name: str) -> dict[str, Any]:
    """The model card of a bundled model.

    Parameters
    ----------
    name : str
        One of :func:`list_pretrained`.

    Returns
    -------
    dict
        ``name``, ``description``, ``file``, ``sha256``, ``bytes``, ``dtype``, ``config`` (the
        :class:`~hmgdm_core.train.PretrainConfig` as a dict), ``graphs`` (how the training graphs were built:
        the feature space the model expects), ``training_data`` (sources, licences, attribution), ``steps``,
        ``wall_time_s``, ``hardware``, ``date``, ``command``, ``fp16_embedding_difference`` and
        ``representation`` (its row of ``benchmarks/representation.py``, or None until it is run).
    """
    if name not in list_pretrained():
        raise InputError(f"no bundled model {name!r}; bundled: {', '.join(list_pretrained()) or 'none'}")
    return json.loads((models_dir() / f"{name}.json").read_text(encoding="utf-8"))


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pretrained_path(name: str) -> Path:
    """The weights file of a bundled model, after checking its SHA-256 against the card.

    Raises
    ------
    InputError
        When ``name`` is not bundled or the file does not match its card (a damaged installation).
    """
    card = model_card(name)
    path = models_dir() / f"{name}.pt"
    found = file_sha256(path)
    if found != card["sha256"]:
        raise InputError(f"{path} has SHA-256 {found}, its model card records {card['sha256']}: reinstall the package")
    return path


def resolve_checkpoint(name_or_path: str | os.PathLike[str]) -> Path:
    """A bundled model's verified file for a bundled name; any other value is returned as a path.

    A bundled name wins over a same-named file or folder in the working directory only when no such path
    exists, so a user's run folder is never shadowed.
    """
    text = os.fspath(name_or_path)
    if not Path(text).exists() and text in list_pretrained():
        return pretrained_path(text)
    return Path(text)


def pretrained_config(name: str = DEFAULT_PRETRAINED) -> PretrainConfig:
    """The configuration a bundled model was trained with, read from its card (no weights loaded).

    Its weights fit only its own network, masking and noise: a run that continues it (``pretrain(..., init=...)``)
    keeps those and may change the optimisation settings.
    """
    return PretrainConfig.from_json(json.dumps(model_card(name)["config"]))


def load_pretrained(name: str = DEFAULT_PRETRAINED, device: torch.device | str = "cpu") -> Checkpoint:
    """Load a bundled model with ``torch.load(weights_only=True)``, its hash verified against the card.

    Parameters
    ----------
    name : str
        One of :func:`list_pretrained` (default: :data:`DEFAULT_PRETRAINED`).
    device : torch.device or str
        Where to put the model.

    Returns
    -------
    Checkpoint
        As :func:`~hmgdm_core.train.load_checkpoint` returns it: the fp32 network in eval mode, its config and
        meta; the optimiser and learning-rate states are empty (continue with ``pretrain(..., init=...)``).
    """
    return load_checkpoint(pretrained_path(name), device)
