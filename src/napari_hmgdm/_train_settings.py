"""What the training widget remembers between sessions: read entry by entry, written atomically (no Qt).

The file outlives the package version that wrote it. An entry a newer or older version cannot use (a renamed
config field, a value of the wrong type) is dropped on its own with a line saying so, and the widget opens with
its default for that entry instead of failing to open at all.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hmgdm_core.errors import InputError
from hmgdm_core.io.atomic import write_text_atomic
from hmgdm_core.train import PretrainConfig
from hmgdm_core.vae import VAEConfig

__all__ = ["default_settings_path", "read_settings", "write_settings"]


def default_settings_path() -> Path:
    """Where the widget remembers its settings between sessions (the user's config folder)."""
    from platformdirs import user_config_dir

    return Path(user_config_dir("napari-hmgdm")) / "train_widget.json"


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TypeError(f"expected a finite number, got {value!r}")
    return float(value)


def _whole(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected a whole number, got {value!r}")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {value!r}")
    return value


def _vae(value: Any) -> VAEConfig:
    if not isinstance(value, dict):
        raise TypeError(f"expected VAE settings, got {value!r}")
    return VAEConfig(**value)


# Each entry's parser: the saved JSON value to what the widget uses, raising for anything it cannot use.
_PARSERS: dict[str, Callable[[Any], Any]] = {
    "mpp": _number,
    "kind": _text,
    "patch_size": _whole,
    "out_dir": _text,
    "features": _text,
    "start_from": _text,
    "pretrain": lambda value: PretrainConfig.from_json(_text(value)),
    "vae": _vae,
}


def read_settings(path: Path) -> tuple[dict[str, Any], list[str]]:
    """The settings saved at ``path`` that this version can use, each entry checked on its own.

    Parameters
    ----------
    path : Path
        A file written by :func:`write_settings` (possibly by another version); a missing file is no settings.

    Returns
    -------
    settings : dict
        The usable entries: ``mpp`` (float, µm per pixel), ``patch_size`` (int, pixels), ``kind``, ``out_dir``,
        ``features``, ``start_from`` (str), ``pretrain`` (:class:`PretrainConfig`), ``vae`` (:class:`VAEConfig`).
        Unknown entries are left out.
    dropped : list of str
        One line per entry (or for the whole file) that could not be used, and why.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, []
    except OSError as error:
        return {}, [f"could not read {path} ({error.strerror or error})"]
    try:
        saved = json.loads(text)
    except ValueError:
        return {}, [f"{path} is not valid JSON"]
    if not isinstance(saved, dict):
        return {}, [f"{path} does not hold a JSON object"]
    settings, dropped = {}, []
    for name, parse in _PARSERS.items():
        if name not in saved:
            continue
        try:
            settings[name] = parse(saved[name])
        except (InputError, TypeError, ValueError) as error:
            dropped.append(f"{name}: {error}")
    return settings, dropped


def write_settings(path: Path, settings: dict[str, Any]) -> None:
    """Write the widget's settings (the entries :func:`read_settings` returns) to ``path`` atomically.

    Parameters
    ----------
    path : Path
        The settings file (its folder is created if needed).
    settings : dict
        Plain values, with ``pretrain`` a :class:`PretrainConfig` and ``vae`` a :class:`VAEConfig`.
    """
    unknown = set(settings) - set(_PARSERS)
    if unknown:
        raise ValueError(f"unknown widget settings {sorted(unknown)}")
    record = dict(settings)
    if "pretrain" in record:
        record["pretrain"] = record["pretrain"].to_json()
    if "vae" in record:
        record["vae"] = asdict(record["vae"])
    write_text_atomic(path, json.dumps(record, indent=2))
