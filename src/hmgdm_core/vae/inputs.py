"""What a checkpoint reads: raw pixel windows of some side, or the latents of the entity VAE saved with its run."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch_geometric.data import Data

from hmgdm_core.errors import InputError
from hmgdm_core.vae.autoencoder import EntityVAE
from hmgdm_core.vae.config import VAEConfig
from hmgdm_core.vae.fit import VAEStep, fit_entity_vae, latent_graph, load_entity_vae

__all__ = ["VAE_FILE", "ModelInputs", "model_inputs", "run_vae"]

VAE_FILE = "vae.pt"
"""Name of the entity VAE a training run saves beside its checkpoints."""


@dataclass(frozen=True)
class ModelInputs:
    """How to build and map entity graphs for a checkpoint."""

    window: int
    """Side w of the pixel windows to cut (``GraphConfig.window``)."""
    vae: EntityVAE | None
    """The entity VAE whose latents the checkpoint reads; ``None`` in raw mode (features are the windows)."""
    vae_path: Path | None
    """Where the VAE was loaded from."""

    @property
    def mode(self) -> str:
        """``'entity VAE'`` or ``'raw windows'``, for messages and layer names."""
        return "entity VAE" if self.vae is not None else "raw windows"

    def graphs(self, graphs: Sequence[Data]) -> list[Data]:
        """The graphs as the model reads them: VAE latents (:func:`~hmgdm_core.vae.latent_graph`) or unchanged."""
        if self.vae is None:
            return list(graphs)
        return [latent_graph(self.vae, graph) for graph in graphs]


def model_inputs(feature_dim: int, checkpoint: Path, vae_path: Path | None = None) -> ModelInputs:
    """Detect the feature mode of a checkpoint from its input size F and the VAE beside it.

    Parameters
    ----------
    feature_dim : int
        F of the checkpoint (``load_checkpoint(path).config.model.feature_dim``).
    checkpoint : Path
        The checkpoint; a ``vae.pt`` in its folder is the VAE its run trained on.
    vae_path : Path, optional
        An entity VAE chosen by hand; it takes precedence over the one beside the checkpoint.

    Returns
    -------
    ModelInputs
        VAE mode when a VAE is found (its latent width must be F); otherwise raw mode with w = √(F / 3).

    Raises
    ------
    InputError
        The VAE does not fit the checkpoint, or F is no 3·w² and no VAE was found.
    """
    found = vae_path if vae_path is not None else Path(checkpoint).parent / VAE_FILE
    recorded = _recorded_feature_space(Path(checkpoint)).get("kind")
    if recorded == "latents" and not found.is_file():
        raise InputError(f"{checkpoint} was trained on entity-VAE latents but no {VAE_FILE} lies beside it: "
                         "choose the entity VAE file of its training run (its raw-window reading would be noise).")
    if vae_path is not None or found.is_file():
        if not found.is_file():
            raise InputError(f"No entity VAE at {found}: choose the {VAE_FILE} saved with the training run.")
        vae = load_entity_vae(found)
        if vae.config.latent_dim != feature_dim:
            raise InputError(f"The entity VAE {found} gives {vae.config.latent_dim} numbers per entity but the "
                             f"checkpoint reads {feature_dim}: choose the {VAE_FILE} of the same training run.")
        if recorded == "raw windows":
            raise InputError(f"{checkpoint} was trained on raw pixel windows: embed it without an entity VAE.")
        return ModelInputs(vae.config.window, vae, found)
    side = round((feature_dim / 3) ** 0.5)
    if 3 * side * side != feature_dim:
        raise InputError(f"This checkpoint reads entity-VAE latents ({feature_dim} numbers per entity) but no "
                         f"{VAE_FILE} lies beside it: choose the entity VAE file of its training run.")
    return ModelInputs(side, None, None)


def _recorded_feature_space(checkpoint: Path) -> dict:
    """The ``feature_space`` a checkpoint file records (empty for a folder or an older checkpoint)."""
    if not checkpoint.is_file():
        return {}
    try:
        payload = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception:  # unreadable files are reported by load_checkpoint, with its message
        return {}
    meta = payload.get("meta", {}) if isinstance(payload, dict) else {}
    return meta.get("feature_space", {}) if isinstance(meta, dict) else {}


def run_vae(
    graphs: Sequence[Data],
    run_dir: str | os.PathLike[str],
    config: VAEConfig | None = None,
    device: torch.device | str = "cpu",
    *,
    refit: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ModelInputs:
    """The entity VAE of a training run: fitted on ``graphs`` into ``run_dir/vae.pt`` unless one is there.

    A resumed or repeated run reuses its VAE, so its latents, and the pre-training on them, stay the same.

    Parameters
    ----------
    graphs : sequence of Data
        Pixel entity graphs (rows are 3 × w × w windows) to fit on.
    run_dir : str or PathLike
        The pre-training run folder.
    config : VAEConfig, optional
        Settings of a new fit (default: ours).
    device : torch.device or str
        Where to fit.
    refit : bool
        Fit again even when the run has a VAE.
    progress : callable, optional
        ``progress(step, steps)`` after each optimisation step of a fit.

    Returns
    -------
    ModelInputs
        The VAE (``.vae``, ``.vae_path``); ``.graphs(graphs)`` maps pixel graphs to its latents.
    """
    path = Path(run_dir) / VAE_FILE
    if refit or not path.is_file():
        config = config or VAEConfig()
        for event in fit_entity_vae(graphs, path, config, device):
            if isinstance(event, VAEStep) and progress is not None:
                progress(event.step, config.steps)
    vae = load_entity_vae(path)
    return ModelInputs(vae.config.window, vae, path)
