"""Patch graph datasets of many slides: patches as Dask tasks, one dataset file per slide or region.

Each item (a slide, or a box of one) is cut into square patches at ``mpp``; patches with less
tissue than ``min_tissue`` in the slide's low-resolution tissue mask are skipped, the others
are built in parallel, a few patches per task (each task opens the slide once). The dataset of
an item is written atomically as ``<name>.pt``; a re-run skips items whose file exists and
loads, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hmgdm_core.batch.manifest import ItemResult, write_manifest
from hmgdm_core.batch.sources import SlideItem
from hmgdm_core.batch.tasks import StageProgress, TaskRunner
from hmgdm_core.errors import InputError, NoTissueError
from hmgdm_core.graph import GraphConfig, GraphDataset
from hmgdm_core.io.region import Region

__all__ = ["SlideGraphConfig", "build_graphs", "item_graphs"]

_PATCHES_PER_TASK = 8
"""Most patches per Dask task: enough to pay for opening the slide in the task, few enough to spread a slide."""

_MIN_TASKS = 16
"""Items with few patches get fewer patches per task, down to one, so that they still spread over the workers."""

_MIN_NODES = 2
"""Graphs with fewer nodes have no edge, so there is nothing to mask and reconstruct: they are dropped."""


@dataclass(frozen=True)
class SlideGraphConfig:
    """How slides are cut into patch graphs.

    Parameters
    ----------
    graph : GraphConfig
        Entity kind and graph parameters of each patch.
    mpp : float
        µm per pixel the patches are read at.
    patch_size : int
        Patch side in read pixels; partial patches at the right and bottom edges are dropped.
    min_tissue : float
        Least fraction (0–1) of a patch on tissue, judged on the slide's tissue mask
        (:func:`~hmgdm_core.tissue.compute_tissue_mask`); patches over glass are skipped.
    """

    graph: GraphConfig = field(default_factory=GraphConfig)
    mpp: float = 1.0
    patch_size: int = 128
    min_tissue: float = 0.5

    def __post_init__(self) -> None:
        if not self.mpp > 0 or self.patch_size < 1 or not 0 <= self.min_tissue <= 1:
            raise InputError("SlideGraphConfig needs mpp > 0, patch_size >= 1 and min_tissue in [0, 1]")


def _patch_regions(region: Region, patch_size: int) -> list[Region]:
    """Row-major non-overlapping patches of ``region``, each a sub-region read as exactly patch_size² px."""
    rows, cols = region.shape
    d = region.downsample
    side = max(1, round(patch_size * d))
    # The sub-region's own mpp makes its read shape exactly the patch, even for a fractional downsample.
    return [
        Region(
            region.y + round(y * d),
            region.x + round(x * d),
            side,
            side,
            region.base_mpp,
            region.base_mpp * side / patch_size,
        )
        for y in range(0, rows - patch_size + 1, patch_size)
        for x in range(0, cols - patch_size + 1, patch_size)
    ]


def _patch_records(
    slide: str,
    slide_mpp: float | None,
    patches: list[Region],
    mpp: float,
    config: GraphConfig,
    label: int | None,
    group: str,
) -> list[dict]:
    """One Dask task: the graph records of ``patches`` that have at least :data:`_MIN_NODES` nodes."""
    import torch

    from hmgdm_core.graph import graph_from_image
    from hmgdm_core.graph.storage import graph_to_record
    from hmgdm_core.io import open_slide
    from hmgdm_core.train.memory import release_free_heap

    records = []
    with open_slide(slide, mpp=slide_mpp) as opened:
        for sub in patches:
            image = opened.read(sub)
            graph = graph_from_image(image, mpp, config, sub)
            if graph.num_nodes < _MIN_NODES:
                continue
            if label is not None:
                graph.y = torch.tensor([label], dtype=torch.int64)
            graph.group = group
            records.append(graph_to_record(graph, image))
            release_free_heap()
    return records


def item_graphs(
    item: SlideItem,
    config: SlideGraphConfig | None = None,
    runner: TaskRunner | None = None,
    progress: StageProgress | None = None,
) -> GraphDataset:
    """The patch graph dataset of one slide or region.

    Parameters
    ----------
    item : SlideItem
        The slide, its optional level-0 box, resolution override, label and group.
    config : SlideGraphConfig, optional
        Resolution, patch size, tissue threshold and graph parameters.
    runner : TaskRunner, optional
        An entered runner; default a local threaded one.
    progress : callable, optional
        Called as ``progress('patches', done, total)`` as patch tasks finish (``total``: tissue patches).

    Returns
    -------
    GraphDataset
        Graphs of the tissue patches, in row-major patch order; ``pos`` in level-0 (y, x) pixels of the
        slide; ``group`` (and ``y`` when the item has a label) set on every graph.

    Raises
    ------
    SlideError, RegionError
        The slide cannot be read, or the box does not lie inside it.
    NoTissueError
        No patch holds enough tissue or gives a graph.
    """
    import dask

    from hmgdm_core.io import open_slide
    from hmgdm_core.tissue import compute_tissue_mask

    config = config or SlideGraphConfig()
    if runner is None:
        with TaskRunner() as local:
            return item_graphs(item, config, local, progress)
    with open_slide(item.slide, mpp=item.mpp) as slide:
        region = slide.region(*item.box, mpp=config.mpp) if item.box else slide.full_region(mpp=config.mpp)
        if min(region.shape) < config.patch_size:
            raise InputError(
                f"{item.name}: the region is {region.shape} px at {config.mpp} µm/px, smaller than "
                f"one {config.patch_size} px patch"
            )
        tissue = compute_tissue_mask(slide)
        patches = [p for p in _patch_regions(region, config.patch_size) if tissue.fraction(p) >= config.min_tissue]
        slide_mpp = slide.mpp
    if not patches:
        raise NoTissueError(
            f"{item.name}: no patch holds {config.min_tissue:.0%} tissue; check the slide (is it "
            "blank or out of focus?) or lower the tissue threshold"
        )
    task = dask.delayed(_patch_records, pure=True)
    per_task = max(1, min(_PATCHES_PER_TASK, len(patches) // _MIN_TASKS))
    chunks = [patches[i : i + per_task] for i in range(0, len(patches), per_task)]
    tasks = [task(str(item.slide), slide_mpp, c, config.mpp, config.graph, item.label, item.group_id) for c in chunks]
    sizes = np.cumsum([0, *map(len, chunks)])

    def report(done: int, total: int) -> None:
        # Tasks finish in any order; the count of patches done is close enough for a bar.
        progress("patches", int(sizes[done]), len(patches))

    parts = runner.compute(tasks, report if progress is not None else None)
    records = [r for part in parts for r in part]
    if not records:
        raise NoTissueError(
            f"{item.name}: none of the {len(patches)} tissue patches gave a graph of {_MIN_NODES} or more entities"
        )
    return GraphDataset(records)


def _finished(path: Path) -> int | None:
    """Graph count of a finished dataset file, None when it is missing or unreadable."""
    if not path.is_file():
        return None
    try:
        return len(GraphDataset.load(path))
    except (InputError, RuntimeError, OSError, EOFError):
        return None


def build_graphs(
    items: Sequence[SlideItem],
    out_dir: str | Path,
    config: SlideGraphConfig | None = None,
    *,
    runner: TaskRunner | None = None,
    overwrite: bool = False,
    progress: StageProgress | None = None,
) -> list[ItemResult]:
    """Build and write the patch graph dataset of every item; failures are recorded, not raised.

    Parameters
    ----------
    items : sequence of SlideItem
        From :func:`~hmgdm_core.batch.sources.slide_items`.
    out_dir : str or Path
        Folder for ``<item.name>.pt`` files and ``manifest.csv`` / ``manifest.json``.
    config : SlideGraphConfig, optional
        Resolution, patch size, tissue threshold and graph parameters.
    runner : TaskRunner, optional
        An entered runner; default a local threaded one.
    overwrite : bool
        Rebuild items whose dataset file already exists (default: skip them).
    progress : callable, optional
        ``progress('slides', done, total)`` after each item and ``progress('patches', done, total)``
        within one.

    Returns
    -------
    list of ItemResult
        One per item, in order; ``status`` is ``'built'``, ``'skipped'`` (already there) or ``'failed'``.
        The manifest is rewritten after every item, so it is current even if the run is stopped.
    """
    config = config or SlideGraphConfig()
    if runner is None:
        with TaskRunner() as local:
            return build_graphs(items, out_dir, config, runner=local, overwrite=overwrite, progress=progress)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results: list[ItemResult] = []
    if progress is not None:
        progress("slides", 0, len(items))
    for done, item in enumerate(items, start=1):
        path = out / f"{item.name}.pt"
        count = None if overwrite else _finished(path)
        if count is not None:
            results.append(ItemResult(item.name, item.slide, "skipped", path, count, item=item))
        else:
            try:
                dataset = item_graphs(item, config, runner, progress)
                dataset.save(path)
                results.append(ItemResult(item.name, item.slide, "built", path, len(dataset), item=item))
            except Exception as error:  # one bad slide (corrupt tile, no tissue) must not stop the batch
                message = f"{type(error).__name__}: {error}"
                results.append(ItemResult(item.name, item.slide, "failed", path, 0, message, item))
        write_manifest(results, out)
        if progress is not None:
            progress("slides", done, len(items))
    return results
