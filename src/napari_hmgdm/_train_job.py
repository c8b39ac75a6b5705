"""The training job: build a region's patch graphs, optionally fit the entity VAE, then pre-train (no Qt)."""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from hmgdm_core.errors import InputError, NoTissueError
from hmgdm_core.graph import GraphConfig, GraphDataset, dataset_from_region
from hmgdm_core.graph.build import entities_for
from hmgdm_core.io import Region, open_slide
from hmgdm_core.train import (
    CancelToken,
    MaskDrawn,
    PretrainConfig,
    StepDone,
    StepSkipped,
    TrainConfig,
    TrainEvent,
    pretrain,
    resolve_device,
)
from hmgdm_core.vae import (
    VAE_FILE,
    VAEConfig,
    VAEFinished,
    VAEStep,
    fit_entity_vae,
    load_entity_vae,
    model_inputs,
    save_entity_vae,
)

__all__ = ["WIDGET_TRAIN_DEFAULTS", "FollowedLabels", "TrainRequest", "train_job"]

# The training widget's optimiser defaults. Short runs suit an interactive session; the paper's 250 epochs belong on
# the command line.
WIDGET_TRAIN_DEFAULTS = TrainConfig(batch_size=8, max_steps=200, checkpoint_every_epochs=5)


@dataclass(frozen=True)
class TrainRequest:
    """What to pre-train on and how."""

    slide_path: str
    """The slide file."""
    slide_mpp: float
    """Level-0 µm/px of the slide."""
    region: Region
    """The selected region, read at ``region.mpp`` and cut into patches."""
    patch_size: int
    """Patch side in read pixels; one graph per patch."""
    graph_config: GraphConfig
    """Entity kind and parameters of the patch graphs."""
    pretrain_config: PretrainConfig
    """Model, masking, diffusion and optimisation settings."""
    out_dir: Path
    """Run folder for checkpoints and the config."""
    resume: Path | None = None
    """Checkpoint to continue from."""
    init: Path | None = None
    """Checkpoint whose weights start a new run (e.g. the bundled model); ``None``: random weights."""
    vae_config: VAEConfig | None = None
    """Fit an entity VAE with these settings first and pre-train on its latents; ``None``: raw windows."""


@dataclass(frozen=True)
class FollowedLabels:
    """The entity label image of the patch graph whose mask schedule a run records."""

    dataset_index: int
    """Index of the patch graph in the run's dataset."""
    labels: np.ndarray
    """(patch, patch) int entity labels over the patch's read pixels (the graph's ``entity_id`` index them)."""


def train_job(
    request: TrainRequest, cancel: CancelToken, min_interval_s: float = 0.2
) -> Generator[str | GraphDataset | FollowedLabels | TrainEvent | VAEFinished | list, None, None]:
    """Build the patch graphs of a region, then pre-train on them, yielding progress.

    With ``request.vae_config``, an entity VAE is first fitted on the patch graphs' windows and saved
    as ``vae.pt`` in the run folder (or the one beside the resumed checkpoint is reused), and the model
    pre-trains on the graphs' VAE latents.

    Per-step events (:class:`StepDone`, :class:`MaskDrawn`, :class:`StepSkipped`,
    :class:`~hmgdm_core.vae.VAEStep`) are batched and yielded together as a list at most every
    ``min_interval_s`` seconds, so a fast CPU run cannot flood the GUI thread; every other event is
    yielded as it comes.

    Yields
    ------
    str, GraphDataset, FollowedLabels, TrainEvent, VAEFinished or list
        ``"graphs"`` before building, the dataset once built, the label image of its first patch
        (the graph the mask schedule follows), ``"vae"`` and the VAE's events when one is fitted,
        then the training events.
    """
    yield "graphs"
    with open_slide(request.slide_path, mpp=request.slide_mpp) as slide:
        rgb = slide.read(request.region)
    grid = dataset_from_region(rgb, request.region, request.patch_size, request.graph_config)
    # Patches of bare glass give graphs of no or one entity: nothing to mask or reconstruct, so they are left out.
    kept = [i for i, graph in enumerate(grid) if graph.num_nodes >= 2]
    if not kept:
        raise NoTissueError("No patch of the region holds two entities or more: select an area with tissue.")
    dataset = GraphDataset([grid.records[i] for i in kept])
    yield dataset
    # The schedule follows training graph 0, the kept[0]-th patch in row-major order; segmenting its pixels
    # again gives its labels.
    side = request.patch_size
    row, col = divmod(kept[0], request.region.shape[1] // side)
    first = np.ascontiguousarray(rgb[row * side : (row + 1) * side, col * side : (col + 1) * side])
    yield FollowedLabels(0, entities_for(first, float(request.region.mpp), request.graph_config).labels)
    if cancel.cancelled:
        return
    graphs, config = dataset, request.pretrain_config
    if request.vae_config is not None:
        vae_path = yield from _vae_for(request, dataset, cancel, min_interval_s)
        if cancel.cancelled:
            return
        inputs = model_inputs(request.vae_config.latent_dim, request.out_dir, vae_path)
        graphs = inputs.graphs(dataset)
        config = replace(config, model=replace(config.model, feature_dim=request.vae_config.latent_dim))
    yield from _batched(pretrain(graphs, config, request.out_dir, resume=request.resume, init=request.init,
                                  cancel=cancel),
                        min_interval_s)


def _batched(events: Iterator, min_interval_s: float) -> Generator:
    """Relay events, gathering the per-step ones into lists at most every ``min_interval_s`` seconds."""
    pending: list = []
    last = 0.0
    for event in events:
        if isinstance(event, StepDone | MaskDrawn | StepSkipped | VAEStep):
            pending.append(event)
            now = time.monotonic()
            if now - last >= min_interval_s:
                yield pending
                pending, last = [], now
            continue
        if pending:
            yield pending
            pending = []
        yield event
    if pending:
        yield pending


def _vae_for(
    request: TrainRequest, dataset: GraphDataset, cancel: CancelToken, min_interval_s: float
) -> Generator[str | VAEFinished | list, None, Path]:
    """Fit the entity VAE into the run folder, or reuse the resumed run's (its latents must not change)."""
    if request.graph_config.window != request.vae_config.window:
        raise InputError(f"The graphs' {request.graph_config.window}-px windows differ from the VAE's "
                         f"{request.vae_config.window}-px ones: build the graphs with the VAE's window.")
    out = request.out_dir / VAE_FILE
    previous = request.resume.parent / VAE_FILE if request.resume is not None else None
    if previous is not None and previous.is_file():
        save_entity_vae(out, load_entity_vae(previous))
        return out
    yield "vae"
    device = resolve_device(request.pretrain_config.train.device)
    yield from _batched(fit_entity_vae(dataset, out, request.vae_config, device, lambda: cancel.cancelled),
                        min_interval_s)
    return out
