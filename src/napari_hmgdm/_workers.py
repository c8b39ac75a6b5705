"""The jobs the widgets run in worker threads: plain generators over core calls.

Nothing here imports napari or Qt and nothing touches a viewer: a widget copies what it needs
from the viewer into a request, runs one of these generators in a ``thread_worker``, and turns
what they yield or return into layers on the GUI thread. Tests drive them directly.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hmgdm_core.graph import GraphConfig, GraphDataset, dataset_from_region
from hmgdm_core.graph.build import entities_for, graph_from_entities
from hmgdm_core.graph.contract import EntityGraph
from hmgdm_core.graph.subgraph import inside_polygon, node_subgraph
from hmgdm_core.io import Region, open_slide
from hmgdm_core.train import CancelToken, MaskDrawn, PretrainConfig, StepDone, StepSkipped, TrainEvent, pretrain

__all__ = ["GraphRequest", "GraphResult", "TrainRequest", "graph_job", "train_job"]


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
    """A built graph and the label image of its entities."""

    graph: EntityGraph
    """The entity graph (``pos`` in level-0 (y, x) pixels)."""
    labels: np.ndarray
    """(rows, cols) int32 entity labels at ``graph.region['mpp']``; dropped entities are 0."""


def graph_job(request: GraphRequest) -> Generator[str, None, GraphResult]:
    """Build the entity graph of a region, yielding the name of each stage before it starts.

    Yields
    ------
    str
        ``"reading"``, ``"entities"``, ``"graph"``: the widget shows them and may quit there.

    Returns
    -------
    GraphResult
    """
    yield "reading"
    with open_slide(request.slide_path, mpp=request.slide_mpp) as slide:
        request.region.check_inside(slide.shape)
        rgb = slide.read(request.region)
    yield "entities"
    mpp = float(request.region.mpp)
    entities = entities_for(rgb, mpp, request.config)
    yield "graph"
    graph = graph_from_entities(entities, rgb, request.region, request.config)
    labels = entities.labels
    if request.polygon is not None:
        keep = inside_polygon(graph.pos.numpy(), request.polygon)
        graph = node_subgraph(graph, keep)
        dropped = np.ones(entities.n + 1, dtype=bool)
        dropped[0] = False
        dropped[graph.entity_id.numpy()] = False
        labels = np.where(dropped[labels], 0, labels)
    return GraphResult(graph, labels)


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


def train_job(
    request: TrainRequest, cancel: CancelToken, min_interval_s: float = 0.2
) -> Generator[str | GraphDataset | TrainEvent | list[TrainEvent], None, None]:
    """Build the patch graphs of a region, then pre-train on them, yielding progress.

    Per-step events (:class:`StepDone`, :class:`MaskDrawn`, :class:`StepSkipped`) are batched
    and yielded together as a list at most every ``min_interval_s`` seconds, so a fast CPU run
    cannot flood the GUI thread; every other event is yielded as it comes.

    Yields
    ------
    str, GraphDataset, TrainEvent or list of TrainEvent
        ``"graphs"`` before building, the dataset once built, then the training events.
    """
    yield "graphs"
    with open_slide(request.slide_path, mpp=request.slide_mpp) as slide:
        rgb = slide.read(request.region)
    dataset = dataset_from_region(rgb, request.region, request.patch_size, request.graph_config)
    yield dataset
    if cancel.cancelled:
        return
    pending: list[TrainEvent] = []
    last = 0.0
    for event in pretrain(dataset, request.pretrain_config, request.out_dir, resume=request.resume, cancel=cancel):
        if isinstance(event, StepDone | MaskDrawn | StepSkipped):
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
