"""The training widget's settings controls: opened with the last session's values, remembered for the next."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING

from magicgui.widgets import ComboBox, FileEdit, SpinBox

from hmgdm_core.graph import ENTITY_KINDS
from hmgdm_core.model.config import ModelConfig
from hmgdm_core.pretrained import DEFAULT_PRETRAINED, list_pretrained
from hmgdm_core.train import PretrainConfig
from hmgdm_core.train.config import PRESETS
from hmgdm_core.vae import VAEConfig
from napari_hmgdm._devices import device_choices, precision_choices
from napari_hmgdm._train_job import WIDGET_TRAIN_DEFAULTS
from napari_hmgdm._train_settings import default_settings_path, read_settings, write_settings
from napari_hmgdm._widgets._forms import DataclassForm
from napari_hmgdm._widgets._selection import RegionPicker

if TYPE_CHECKING:
    import napari
    from napari_hmgdm._widgets._status import StatusLine

__all__ = ["BUNDLED", "LATENT", "RAW", "SCRATCH", "WIDGET_VAE_DEFAULTS", "TrainForm", "default_runs_dir"]

# Like WIDGET_TRAIN_DEFAULTS, a short entity-VAE fit; the CLI keeps VAEConfig's 2000 steps of 256 windows.
WIDGET_VAE_DEFAULTS = VAEConfig(batch_size=64, steps=200)
RAW, LATENT = "raw windows", "entity VAE (latent features)"
BUNDLED, SCRATCH = "bundled model", "from scratch"


def _choice(saved: dict, name: str, choices: Sequence[str], default: str, dropped: list[str]) -> str:
    """The saved value of a drop-down when it is still one of its choices (they change between versions).

    A value no longer offered gives ``default`` and a line in ``dropped``, like the entries ``read_settings`` drops.
    """
    value = saved.get(name, default)
    if value in choices:
        return value
    dropped.append(f"{name}: {value!r} is not offered (choose from {', '.join(map(repr, choices))})")
    return default


def default_runs_dir() -> Path:
    """Parent folder of the widget's training runs."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("napari-hmgdm")) / "runs"


class TrainForm:
    """The settings controls of :class:`~napari_hmgdm._widgets.train_widget.TrainWidget` (one of its bases).

    :meth:`_make_settings_controls` makes them as attributes of the widget, which lays them out among its own
    controls; the widget's ``status`` says when a choice is changed for the user (a precision the device lacks).
    """

    status: StatusLine  # the widget's
    _settings_path: Path
    picker: RegionPicker
    kind: ComboBox
    patch_size: SpinBox
    train_settings: DataclassForm
    model_settings: DataclassForm
    features: ComboBox
    vae_settings: DataclassForm
    out_dir: FileEdit
    start_from: ComboBox
    preset: ComboBox

    def _make_settings_controls(self, viewer: napari.viewer.Viewer, settings_path: Path | None) -> list[str]:
        """Make the settings controls, each with its value saved at ``settings_path`` while still usable.

        ``viewer`` and ``settings_path`` are the widget's (:class:`~napari_hmgdm._widgets.train_widget.TrainWidget`).

        Returns
        -------
        list of str
            One line per saved setting that could not be used (its control has the default instead), and why.
        """
        self._settings_path = settings_path or default_settings_path()
        saved, dropped = read_settings(self._settings_path)
        self.picker = RegionPicker(viewer, mpp=saved.get("mpp", 1.0))
        self.kind = ComboBox(choices=list(ENTITY_KINDS), value=_choice(saved, "kind", ENTITY_KINDS, "tissue", dropped),
                             label="entities")
        self.kind.tooltip = "nuclei: one node per nucleus; tissue: one node per small piece of similar tissue."
        self.patch_size = SpinBox(value=min(max(saved.get("patch_size", 256), 32), 4096), min=32, max=4096,
                                  step=32, label="patch size (px)")  # fmt: skip
        self.patch_size.tooltip = "The region is cut into square patches of this many read pixels; one graph each."
        pretrain_saved = saved.get("pretrain")
        train_defaults = pretrain_saved.train if pretrain_saved else WIDGET_TRAIN_DEFAULTS
        choices, found = device_choices()
        if train_defaults.device not in choices:
            dropped.append(f"device: {train_defaults.device!r} is not found (found: {found})")
            train_defaults = replace(train_defaults, device="auto")
        offered = precision_choices(train_defaults.device)
        if train_defaults.precision not in offered:
            dropped.append(f"precision: {train_defaults.precision!r} does not train on {train_defaults.device}")
            train_defaults = replace(train_defaults, precision="fp32")
        self.train_settings = DataclassForm(
            train_defaults,
            choices={"device": choices, "precision": offered},
            essential=("max_steps", "batch_size", "device"),
            advanced_title="Advanced training settings",
        )
        self.train_settings.device.tooltip = f"{self.train_settings.device.tooltip} Found: {found}."
        self.train_settings.device.changed.connect(self._offer_precisions)
        self.model_settings = DataclassForm(pretrain_saved.model if pretrain_saved else ModelConfig())
        self.features = ComboBox(choices=[RAW, LATENT], value=_choice(saved, "features", (RAW, LATENT), RAW, dropped),
                                 label="node features")
        self.features.tooltip = (
            "raw: the 3×w×w pixel windows; entity VAE: fit a VAE on the region's windows "
            "first (saved as vae.pt beside the checkpoints) and pre-train on its latents"
        )
        self.vae_settings = DataclassForm(saved.get("vae", WIDGET_VAE_DEFAULTS), essential=("steps",))
        self.out_dir = FileEdit(mode="d", value=saved.get("out_dir", str(default_runs_dir())), label="save runs in")
        self.out_dir.tooltip = "Each run writes its checkpoints and settings to a new run-<date> folder here."
        bundled = DEFAULT_PRETRAINED in list_pretrained()
        self.start_from = ComboBox(choices=[BUNDLED, SCRATCH] if bundled else [SCRATCH], label="start from",
                                   value=_choice(saved, "start_from", (BUNDLED, SCRATCH), BUNDLED, dropped) if bundled
                                   else SCRATCH)
        self.start_from.tooltip = (f"bundled: continue pre-training the bundled model {DEFAULT_PRETRAINED} on this "
                                   "region (its network settings are used); from scratch: random weights with the "
                                   "Network settings below")
        self.preset = ComboBox(choices=list(PRESETS), value="default", label="recipe")
        self.preset.tooltip = (
            "fast: a quarter-width network (hidden 64), ~3× the steps per minute on a CPU; at equal time its "
            "embeddings probed no better than the default's (docs/representation.md)"
        )
        self.preset.changed.connect(self._apply_preset)
        return dropped

    def _apply_preset(self, name: str) -> None:
        """Fill the network form and the learning rate from a named preset."""
        preset = PRESETS[name]
        self.model_settings.set_config(preset.model)
        self.train_settings.set_config(replace(self.train_settings.config, lr=preset.train.lr))

    def _offer_precisions(self, device: str) -> None:
        """Offer the precisions that train on ``device``; a choice it lacks becomes fp32, and the status says so."""
        precision = self.train_settings.precision
        offered = precision_choices(device)
        if precision.value not in offered:
            self.status.value = f"{precision.value} does not train on {device}: precision set to fp32."
            precision.value = "fp32"
        precision.choices = offered

    def pretrain_config(self) -> PretrainConfig:
        """The run configuration: the chosen recipe's masking and noise with the forms' network and optimiser."""
        recipe = PRESETS[self.preset.value]
        return replace(recipe, model=self.model_settings.config, train=self.train_settings.config)

    def settings_dict(self) -> dict:
        """The training configuration as a plain dict (for display and tests)."""
        return asdict(self.pretrain_config())

    def save_settings(self) -> None:
        """Remember the current settings for the next session (atomic write)."""
        write_settings(self._settings_path, {
            "mpp": float(self.picker.mpp.value),
            "kind": self.kind.value,
            "patch_size": int(self.patch_size.value),
            "out_dir": str(self.out_dir.value),
            "pretrain": self.pretrain_config(),
            "features": self.features.value,
            "start_from": self.start_from.value,
            "vae": self.vae_settings.config,
        })  # fmt: skip
