"""The jobs the widgets run in worker threads: plain generators over core calls.

Nothing here imports napari or Qt and nothing touches a viewer: a widget copies what it needs
from the viewer into a request, runs one of these generators in a ``thread_worker``, and turns
what they yield or return into layers on the GUI thread. Tests drive them directly.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from hmgdm_core.errors import InputError
from hmgdm_core.graph import ENTITY_KINDS, GraphConfig, build_graph
from hmgdm_core.graph.build import entities_for, graph_from_entities
from hmgdm_core.graph.contract import EntityGraph
from hmgdm_core.graph.subgraph import inside_polygon, node_subgraph
from hmgdm_core.io import Region, open_slide
from hmgdm_core.overlays import PatchGrid
from hmgdm_core.vae import model_inputs

__all__ = [
    "GraphRequest",
    "GraphResult",
    "PatchEmbedding",
    "PatchRequest",
    "ReconstructionRequest",
    "ReconstructionResult",
    "graph_job",
    "patch_embedding_job",
    "reconstruction_job",
]


@dataclass(frozen=True)
class GraphRequest:
    """What to build: a slide region, an optional outline inside it, and the graph settings."""

    slide_path: str
    """The slide file."""
    slide_mpp: float
    """Level-0 µm/px of the slide (as shown in the viewer)."""
    region: Region
    """Bounding box to analyse, read at ``region.mpp``."""
    polygon: np.ndarray | None
    """Outline (V, 2) in level-0 (y, x) pixels; nodes outside it are dropped. ``None``: the whole box."""
    config: GraphConfig
    """Entity kind and parameters."""


@dataclass(frozen=True)
class GraphResult:
    """A built graph and, for regions built in one piece, the label image of its entities."""

    graph: EntityGraph
    """The entity graph (``pos`` in level-0 (y, x) pixels)."""
    labels: np.ndarray | None
    """(rows, cols) int32 entity labels at ``graph.region['mpp']`` (dropped entities are 0);
    ``None`` for a region built tile by tile, whose label image is never held whole."""


class _Stopped(Exception):
    """Raised inside the tile computation when the job is abandoned."""


def graph_job(request: GraphRequest, tile_size: int = 2048) -> Generator[tuple[str, int, int], None, GraphResult]:
    """Build the entity graph of a region, yielding ``(stage, done, total)`` progress.

    A region up to ``tile_size`` read pixels on a side is built in one piece (stages
    ``reading``, ``entities``, ``graph``; 3 in all); a larger one tile by tile through Dask,
    yielding after each tile task. Closing the generator (the worker's quit) stops the tile
    computation at its next task.

    Returns
    -------
    GraphResult
    """
    rows, cols = request.region.shape
    if max(rows, cols) > tile_size:
        graph = yield from _tiled_graph(request, tile_size)
        return GraphResult(_keep_inside(graph, request.polygon), None)
    yield "reading", 0, 3
    with open_slide(request.slide_path, mpp=request.slide_mpp) as slide:
        request.region.check_inside(slide.shape)
        rgb = slide.read(request.region)
    yield "entities", 1, 3
    entities = entities_for(rgb, float(request.region.mpp), request.config)
    yield "graph", 2, 3
    graph = _keep_inside(graph_from_entities(entities, rgb, request.region, request.config), request.polygon)
    dropped = np.ones(entities.n + 1, dtype=bool)
    dropped[0] = False
    dropped[graph.entity_id.numpy()] = False
    return GraphResult(graph, np.where(dropped[entities.labels], 0, entities.labels))


def _keep_inside(graph: EntityGraph, polygon: np.ndarray | None) -> EntityGraph:
    if polygon is None:
        return graph
    return node_subgraph(graph, inside_polygon(graph.pos.numpy(), polygon))


def _tiled_graph(request: GraphRequest, tile_size: int) -> Generator[tuple[str, int, int], None, EntityGraph]:
    """Run the tiled build in a thread and relay its tile progress."""
    updates: queue.Queue = queue.Queue()
    stop = threading.Event()
    outcome: dict = {}

    def progress(done: int, total: int) -> None:
        if stop.is_set():
            raise _Stopped
        updates.put((done, total))

    def run() -> None:
        try:
            with open_slide(request.slide_path, mpp=request.slide_mpp) as slide:
                outcome["graph"] = build_graph(slide, request.region, request.config, tile_size=tile_size,
                                               progress=progress)
        except BaseException as err:  # handed to the generator, which re-raises it on the worker thread
            outcome["error"] = err

    thread = threading.Thread(target=run, name="hmgdm-tiles", daemon=True)
    thread.start()
    try:
        yield "tiles", 0, 1
        while thread.is_alive() or not updates.empty():
            try:
                done, total = updates.get(timeout=0.1)
            except queue.Empty:
                continue
            yield "tiles", done, total
    finally:
        stop.set()
        thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["graph"]


@dataclass(frozen=True)
class PatchRequest:
    """What to embed: a region cut into patches, and the model to embed them with."""

    slide_path: str
    """The slide file."""
    slide_mpp: float
    """Level-0 µm/px of the slide."""
    region: Region
    """The region, read at ``region.mpp``."""
    patch_size: int
    """Patch side in read pixels (non-overlapping grid; partial edge patches dropped)."""
    graph_config: GraphConfig
    """Entity graphs built per patch."""
    checkpoint: Path
    """Pre-trained H-MGDM checkpoint."""
    vae_path: Path | None = None
    """Entity VAE of a latent checkpoint; default: the ``vae.pt`` beside the checkpoint, if any."""
    measurements: tuple[str, ...] = ()
    """Entity kinds (of ``ENTITY_KINDS``) whose pooled measurements follow the embedding in each patch's vector,
    in this order (the hybrid features). The kind of ``graph_config`` reuses the patch graphs; another kind's
    graph is built per patch for its measurements only. Empty: the embeddings alone."""
    embedding: bool = True
    """Start each patch's vector with the model's embedding; ``False``: the pooled measurements alone."""

    def __post_init__(self) -> None:
        unknown = [kind for kind in self.measurements if kind not in ENTITY_KINDS]
        if unknown or len(set(self.measurements)) != len(self.measurements):
            raise InputError(f"measurements must name distinct entity kinds of {ENTITY_KINDS}, got {self.measurements}")
        if not (self.embedding or self.measurements):
            raise InputError("a patch vector without the embedding needs the measurements of an entity kind")


@dataclass(frozen=True)
class PatchEmbedding:
    """The patch grid of a region and one embedding per patch."""

    grid: PatchGrid
    """The patches (row-major)."""
    embeddings: np.ndarray
    """(P, D) float32 patch vectors: the model's (:func:`hmgdm_core.embed.embed_dataset`) unless the request left
    it out, followed by the pooled entity measurements (:func:`hmgdm_core.downstream.pooled_measurements`) of each
    kind that was asked for, in the request's order."""
    graphs: list[EntityGraph]
    """The patch graphs (pixel windows), row-major like the grid; fine-tuning starts from them."""
    vae_path: Path | None
    """The entity VAE the model reads latents of; ``None`` in raw mode."""
    measurement_columns: int = 0
    """How many of the last columns of ``embeddings`` are pooled measurements (0: none)."""


def _pooled_kinds(
    graph: EntityGraph, patch: np.ndarray, mpp: float, config: GraphConfig, region: Region, kinds: tuple[str, ...]
) -> np.ndarray:
    """One patch's pooled measurements of each of ``kinds``, in order: (M,) float32, M = 0 without kinds.

    ``graph`` is the patch's graph of ``config.kind``; another kind's graph is built from ``patch`` (``region``,
    at ``mpp`` µm/px) for its measurements, then dropped.
    """
    from hmgdm_core.downstream import pooled_measurements
    from hmgdm_core.graph import graph_from_image

    parts = [np.zeros(0, np.float32)]
    for kind in kinds:
        other = graph if kind == config.kind else graph_from_image(patch, mpp, replace(config, kind=kind), region)
        parts.append(pooled_measurements([other])[0])  # one kind at a time: their columns differ
    return np.concatenate(parts)


def patch_embedding_job(request: PatchRequest) -> Generator[tuple[str, int, int], None, PatchEmbedding]:
    """Cut a region into patches, build their graphs and embed them, yielding ``(stage, done, total)``.

    Returns
    -------
    PatchEmbedding
    """
    from hmgdm_core.embed import embed_dataset
    from hmgdm_core.graph import graph_from_image
    from hmgdm_core.train import load_checkpoint

    yield "reading", 0, 1
    model = load_checkpoint(request.checkpoint).model
    inputs = model_inputs(model.config.feature_dim, request.checkpoint, request.vae_path)
    graph_config = replace(request.graph_config, window=inputs.window)
    with open_slide(request.slide_path, mpp=request.slide_mpp) as slide:
        image = slide.read(request.region)
    grid = PatchGrid(request.region, request.patch_size)
    graphs, rows = [], []
    mpp = float(request.region.mpp)
    for index, (patch, sub) in enumerate(zip(grid.cut(image), grid.regions(), strict=True)):
        graph = graph_from_image(patch, mpp, graph_config, sub)
        graphs.append(graph)
        rows.append(_pooled_kinds(graph, patch, mpp, graph_config, sub, request.measurements))
        yield "graphs", index + 1, len(grid)
    yield "embedding", len(grid), len(grid)
    measured = np.asarray(rows, np.float32)  # (P, 0) without measurements
    if request.embedding:
        features = embed_dataset(model, inputs.graphs(graphs), device="cpu").patch
    else:
        features = np.zeros((len(graphs), 0), np.float32)
    return PatchEmbedding(grid, np.hstack([features, measured]), graphs, inputs.vae_path, measured.shape[1])


@dataclass(frozen=True)
class ReconstructionRequest:
    """What to reconstruct: one region's graph, a trained model, a timestep and a seed for the split."""

    slide_path: str
    """The slide file."""
    slide_mpp: float
    """Level-0 µm/px of the slide."""
    region: Region
    """The region, read at ``region.mpp`` (raw-window graphs)."""
    graph_config: GraphConfig
    """Entity kind and parameters."""
    checkpoint: Path
    """Pre-trained H-MGDM checkpoint (its diffusion and mask settings are used)."""
    t: int
    """Timestep of the noise, 0..T-1."""
    seed: int
    """Seed of the condition/target split and the noise."""
    vae_path: Path | None = None
    """Entity VAE of a latent checkpoint; default: the ``vae.pt`` beside the checkpoint, if any."""


@dataclass(frozen=True)
class ReconstructionResult:
    """Aligned views of one reconstruction over the region's read pixels."""

    original: np.ndarray
    """(rows, cols, 3) uint8: the region."""
    noised: np.ndarray
    """(rows, cols, 3) uint8: target windows at x_t pasted on the region."""
    reconstructed: np.ndarray
    """(rows, cols, 3) uint8: target windows as predicted x0."""
    error: np.ndarray
    """(rows, cols) float32: each target entity's mean squared error on its pixels, NaN elsewhere."""
    targets: int
    """Number of target entities."""
    mode: str
    """``'raw windows'`` or ``'entity VAE'`` (windows decoded by the VAE's decoder)."""
    centres: np.ndarray
    """(targets, 2) float: centres (y, x) of the pasted target windows, in read pixels of the region."""
    window: int
    """Side of the pasted windows, read pixels."""


def reconstruction_job(request: ReconstructionRequest) -> Generator[str, None, ReconstructionResult]:
    """Build the region's graph, noise its targets at ``t`` and reconstruct them; yields stage names.

    Returns
    -------
    ReconstructionResult
    """
    from hmgdm_core.embed import reconstruct
    from hmgdm_core.overlays import entity_value_map, node_window_errors, paint_reconstruction
    from hmgdm_core.train import load_checkpoint

    yield "reading"
    checkpoint = load_checkpoint(request.checkpoint)
    inputs = model_inputs(checkpoint.config.model.feature_dim, request.checkpoint, request.vae_path)
    graph_config = replace(request.graph_config, window=inputs.window)
    with open_slide(request.slide_path, mpp=request.slide_mpp) as slide:
        image = slide.read(request.region)
    yield "graph"
    entities = entities_for(image, float(request.region.mpp), graph_config)
    graph = graph_from_entities(entities, image, request.region, graph_config)
    yield "reconstructing"
    (model_graph,) = inputs.graphs([graph])
    rec = reconstruct(checkpoint.model, model_graph, request.t, diffusion=checkpoint.config.diffusion,
                      mask_config=checkpoint.config.mask, seed=request.seed, vae=inputs.vae, decode_edges=False)
    views = paint_reconstruction(rec, graph.pos, request.region, image)
    # Errors in pixels in both modes: the decoded windows against the entities' own windows.
    error = entity_value_map(entities.labels, graph.entity_id.numpy(), node_window_errors(graph.x, rec))
    centres = request.region.from_level0(graph.pos.numpy())[rec.mask.node_target.cpu().numpy()]
    return ReconstructionResult(image, views.noised, views.reconstructed, error, int(rec.mask.node_target.sum()),
                                inputs.mode, centres, inputs.window)
