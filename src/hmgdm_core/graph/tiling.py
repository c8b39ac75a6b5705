"""Entity graphs of regions larger than one tile: tile by tile, in parallel through Dask.

Three passes keep memory bounded by the tile size, not the region size:

1. **Entities per tile** (parallel). Nuclei are segmented in the tile plus a halo wider than
   the largest nucleus and kept by the tile whose core holds their centroid, so a nucleus
   crossing a tile border is kept exactly once. Superpixels are made in the tile core alone:
   a tile border cuts superpixels as an image border does, and colour merging stays within
   a tile; the tile returns its border rows and columns of labels.
2. **Topology** (on the driver, from points only). Nuclei: kNN or Delaunay over all centroids.
   Tissue: each tile's own adjacency plus the pairs facing each other across tile seams.
3. **Windows per tile** (parallel). Each node and edge window is cut by the tile whose core
   holds its centre, from the core plus a half-window margin.

Node order is tile order (row-major), then the tile's entity order; pairs are sorted. A region
that fits in one tile gives exactly the graph of one-shot processing. ``entity_id`` is
``tile_index · 2³² + label`` in the tile's entity labels.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hmgdm_core.entities.nuclei import split_factor
from hmgdm_core.errors import InputError
from hmgdm_core.graph.assemble import assemble_graph, edge_measurements, node_measurements
from hmgdm_core.graph.build import MASK_MPP, GraphConfig, entities_for, pair_edges, tissue_mask_for
from hmgdm_core.graph.contract import EntityGraph
from hmgdm_core.graph.topology import delaunay_pairs, knn_pairs
from hmgdm_core.graph.windows import gather_windows
from hmgdm_core.io.region import Region
from hmgdm_core.tissue import TissueConfig, tissue_mask_from_rgb

__all__ = ["Progress", "RegionSource", "tiled_graph"]

Progress = Callable[[int, int], None]
"""``progress(done, total)`` callback for tile tasks."""


@dataclass(frozen=True)
class RegionSource:
    """Reads boxes of a region's image; picklable, so Dask workers in other processes can use it.

    Parameters
    ----------
    region : Region
        The analysed region; boxes are in its read pixels (``region.shape``).
    slide_path : str, optional
        Slide file, reopened in each task (open slides hold file handles and do not pickle).
    slide_mpp : float, optional
        Level-0 µm/px override passed to :func:`~hmgdm_core.io.open_slide`.
    image : ndarray, shape region.shape + (3,), uint8, optional
        The region's image already in memory (instead of a slide).
    """

    region: Region
    slide_path: str | None = None
    slide_mpp: float | None = None
    image: np.ndarray | None = None

    def read(self, y0: int, x0: int, y1: int, x1: int) -> np.ndarray:
        """Pixels ``[y0:y1, x0:x1]`` of the region image, shape (y1 - y0, x1 - x0, 3), uint8."""
        if self.image is not None:
            return np.ascontiguousarray(self.image[y0:y1, x0:x1])
        from hmgdm_core.io import open_slide

        r = self.region
        sy, sx = r.height / r.shape[0], r.width / r.shape[1]
        ly0, ly1 = r.y + round(y0 * sy), r.y + round(y1 * sy)
        lx0, lx1 = r.x + round(x0 * sx), r.x + round(x1 * sx)
        with open_slide(Path(self.slide_path), mpp=self.slide_mpp) as slide:
            box = slide.read(Region(ly0, lx0, ly1 - ly0, lx1 - lx0, r.base_mpp, r.mpp))
        # Resampled reads can differ by a pixel from the box size; crop or edge-pad to it.
        box = box[: y1 - y0, : x1 - x0]
        pad = ((0, y1 - y0 - box.shape[0]), (0, x1 - x0 - box.shape[1]), (0, 0))
        return np.pad(box, pad, mode="edge") if pad[0][1] or pad[1][1] else box

    def tissue_mask(self, config: TissueConfig) -> np.ndarray:
        """Tissue mask of the whole region at about :data:`~hmgdm_core.graph.build.MASK_MPP` (bool, 2-D)."""
        mpp = float(self.region.mpp)
        if self.image is not None:
            return tissue_mask_for(self.image, mpp, config)
        from hmgdm_core.io import open_slide

        r = self.region
        mask_mpp = max(MASK_MPP, mpp)
        with open_slide(Path(self.slide_path), mpp=self.slide_mpp) as slide:
            low = slide.read(Region(r.y, r.x, r.height, r.width, r.base_mpp, mask_mpp))
        return tissue_mask_from_rgb(low, mask_mpp, config)


def _nucleus_halo(config: GraphConfig, mpp: float) -> int:
    """Halo in pixels: the diameter of the largest kept nucleus, plus a little context."""
    diameter_um = 2 * math.sqrt(config.nuclei.max_area_um2 / math.pi)
    return math.ceil((diameter_um + 2 * config.nuclei.marker_spacing_um) / mpp)


def _tile_entities(
    source: RegionSource,
    core: tuple[int, int, int, int],
    config: GraphConfig,
    halo: int,
    tile_index: int,
    tissue_mask: np.ndarray | None,
) -> dict[str, Any]:
    """Pass 1 for one tile: the entities it owns, in region pixels (``tissue_mask``: the tile's part)."""
    rows, cols = source.region.shape
    cy0, cx0, cy1, cx1 = core
    if config.kind == "nuclei":
        # Start on the splitting grid of the whole region, so split lines fall where one shot puts them.
        f = split_factor(config.nuclei, float(source.region.mpp))
        y0, x0 = max(0, cy0 - halo) // f * f, max(0, cx0 - halo) // f * f
        y1, x1 = min(rows, cy1 + halo), min(cols, cx1 + halo)
    else:
        y0, x0, y1, x1 = core
    mpp = float(source.region.mpp)
    entities = entities_for(source.read(y0, x0, y1, x1), mpp, config, tissue_mask)
    points = entities.centroids + np.array([y0, x0])
    own = (points[:, 0] >= cy0) & (points[:, 0] < cy1) & (points[:, 1] >= cx0) & (points[:, 1] < cx1)
    out = {
        "points": points[own],
        "table": {k: v[own] for k, v in entities.table.items()},
        "entity_id": (tile_index << 32) + entities.table["id"][own],
    }
    if config.kind == "tissue":  # every superpixel lies in the core: `own` is all True
        out["pairs"], out["boundary"] = pair_edges(entities, config)
        lab = entities.labels
        out["strips"] = {"top": lab[0], "bottom": lab[-1], "left": lab[:, 0], "right": lab[:, -1]}
    return out


def _seam_pairs(a: np.ndarray, b: np.ndarray, offset_a: int, offset_b: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs across a seam from two facing label strips (local ids, 0 = none) and their boundary."""
    touch = (a > 0) & (b > 0)
    ga = a[touch].astype(np.int64) - 1 + offset_a
    gb = b[touch].astype(np.int64) - 1 + offset_b
    if not len(ga):
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0)
    big = max(int(ga.max()), int(gb.max())) + 1
    key, count = np.unique(np.minimum(ga, gb) * big + np.maximum(ga, gb), return_counts=True)
    return np.stack([key // big, key % big], axis=1), count.astype(np.float64)


def _tile_windows(
    source: RegionSource, core: tuple[int, int, int, int], points: np.ndarray, window: int
) -> torch.Tensor:
    """Pass 3 for one tile: windows centred on ``points`` (region pixels) that lie in its core."""
    rows, cols = source.region.shape
    margin = window - window // 2 + 1
    y0, x0 = max(0, core[0] - margin), max(0, core[1] - margin)
    y1, x1 = min(rows, core[2] + margin), min(cols, core[3] + margin)
    return gather_windows(source.read(y0, x0, y1, x1), points - np.array([y0, x0]), window)


def _compute(tasks: list, scheduler: str, progress: Progress | None = None, done: int = 0, total: int = 0) -> list:
    """Compute the tile tasks, calling ``progress(done + k, total)`` as the k-th one finishes."""
    import dask

    if "://" in scheduler:
        from distributed import Client, as_completed

        with Client(scheduler) as client:
            futures = client.compute(tasks)
            if progress is not None:
                for k, _ in enumerate(as_completed(futures), start=1):
                    progress(done + k, total)
            return client.gather(futures)
    if progress is None:
        return list(dask.compute(*tasks, scheduler=scheduler))
    from dask.callbacks import Callback

    keys = {t.key for t in tasks}
    finished = [done]

    def posttask(key, result, dsk, state, worker_id):
        # Runs in the scheduler loop, so an exception raised by ``progress`` stops the computation.
        if key in keys:
            finished[0] += 1
            progress(finished[0], total)

    with Callback(posttask=posttask):
        return list(dask.compute(*tasks, scheduler=scheduler))


def tiled_graph(
    source: RegionSource,
    config: GraphConfig | None = None,
    tile_size: int = 2048,
    scheduler: str = "threads",
    progress: Progress | None = None,
) -> EntityGraph:
    """Entity graph of a region processed tile by tile (see the module docstring).

    Parameters
    ----------
    source : RegionSource
        The region and where to read it from.
    config : GraphConfig, optional
        What to build (default: ``GraphConfig()``).
    tile_size : int
        Tile side in region read pixels (memory per task is about 40 bytes × tile_size²).
    scheduler : str
        Dask scheduler: ``'threads'`` (default), ``'sync'``, ``'processes'``, or the address of
        a ``dask.distributed`` scheduler (``'tcp://host:8786'``).
    progress : callable, optional
        Called as ``progress(done, total)`` when a tile task finishes; each tile is visited
        twice (entities, then windows), so ``total`` is twice the number of tiles. An exception
        raised by it stops the computation and propagates (how a GUI cancels a large build).

    Returns
    -------
    EntityGraph
        Following :mod:`hmgdm_core.graph.contract`, ``pos`` in level-0 (y, x) pixels.
    """
    import dask

    config = config or GraphConfig()
    if tile_size < 2 * config.window:
        raise InputError(f"tile_size ({tile_size}) must be at least twice the window ({config.window}).")
    region = source.region
    rows, cols = region.shape
    grid_y, grid_x = math.ceil(rows / tile_size), math.ceil(cols / tile_size)
    cores = [
        (ty * tile_size, tx * tile_size, min(rows, (ty + 1) * tile_size), min(cols, (tx + 1) * tile_size))
        for ty in range(grid_y)
        for tx in range(grid_x)
    ]
    mpp = float(region.mpp)
    halo = _nucleus_halo(config, mpp) if config.kind == "nuclei" else 0
    masks: list[np.ndarray | None] = [None] * len(cores)
    if config.kind == "tissue" and config.restrict_to_tissue:
        # One mask for the region, so tissue is judged the same way in every tile.
        mask = source.tissue_mask(config.tissue)
        fy, fx = mask.shape[0] / rows, mask.shape[1] / cols
        masks = [
            mask[
                int(y0 * fy) : max(int(y0 * fy) + 1, math.ceil(y1 * fy)),
                int(x0 * fx) : max(int(x0 * fx) + 1, math.ceil(x1 * fx)),
            ]
            for y0, x0, y1, x1 in cores
        ]
    task = dask.delayed(_tile_entities, pure=True)
    total = 2 * len(cores)
    parts = _compute(
        [task(source, core, config, halo, i, m) for i, (core, m) in enumerate(zip(cores, masks, strict=True))],
        scheduler,
        progress,
        0,
        total,
    )

    counts = [len(p["points"]) for p in parts]
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    points = np.concatenate([p["points"] for p in parts]) if parts else np.zeros((0, 2))
    table = {k: np.concatenate([p["table"][k] for p in parts]) for k in parts[0]["table"]}
    pairs, boundary = _stitched_pairs(parts, offsets, points, mpp, config, grid_y, grid_x)

    # Pass 3: windows of nodes and edge midpoints, each by the tile whose core holds it.
    midpoints = (points[pairs[:, 0]] + points[pairs[:, 1]]) / 2 if len(pairs) else np.zeros((0, 2))
    centres = np.concatenate([points, midpoints])
    owner = (
        np.clip(np.floor(centres[:, 0] / tile_size), 0, grid_y - 1) * grid_x
        + np.clip(np.floor(centres[:, 1] / tile_size), 0, grid_x - 1)
    ).astype(np.int64)
    jobs = [(i, np.flatnonzero(owner == i)) for i in range(len(cores))]
    jobs = [(i, idx) for i, idx in jobs if len(idx)]
    wtask = dask.delayed(_tile_windows, pure=True)
    # Tiles without nodes or edge midpoints have no window pass: they count as done.
    windows = _compute(
        [wtask(source, cores[i], centres[idx], config.window) for i, idx in jobs],
        scheduler,
        progress,
        total - len(jobs),
        total,
    )
    features = torch.empty((len(centres), 3 * config.window**2), dtype=torch.float32)
    for (_, idx), win in zip(jobs, windows, strict=True):
        features[torch.from_numpy(idx)] = win
    n = len(points)
    node_meas, node_names = node_measurements(table, config.shape_features)
    pair_meas, edge_names = edge_measurements(points, pairs, boundary, config.kind, mpp)
    return assemble_graph(
        kind=config.kind,
        x=features[:n],
        pairs=pairs,
        pair_attr=features[n:],
        pair_meas=pair_meas,
        edge_meas_names=edge_names,
        node_meas=node_meas,
        node_meas_names=node_names,
        pos=region.to_level0(points),
        entity_id=np.concatenate([p["entity_id"] for p in parts]),
        mpp=mpp,
        region=region,
        window=config.window,
    )


def _stitched_pairs(
    parts: list[dict],
    offsets: np.ndarray,
    points: np.ndarray,
    mpp: float,
    config: GraphConfig,
    grid_y: int,
    grid_x: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Pass 2: undirected pairs over the whole region, sorted, with boundary lengths in pixels."""
    if config.kind == "nuclei":
        if config.nuclei_topology == "knn":
            pairs = knn_pairs(points * mpp, config.k, config.max_distance_um)
        else:
            pairs = delaunay_pairs(points * mpp, config.max_distance_um)
        return pairs, np.zeros(len(pairs))
    chunks = [(p["pairs"] + offsets[i], p["boundary"]) for i, p in enumerate(parts)]
    for ty in range(grid_y):
        for tx in range(grid_x):
            i = ty * grid_x + tx
            if tx + 1 < grid_x:
                chunks.append(
                    _seam_pairs(parts[i]["strips"]["right"], parts[i + 1]["strips"]["left"], offsets[i], offsets[i + 1])
                )
            if ty + 1 < grid_y:
                chunks.append(
                    _seam_pairs(
                        parts[i]["strips"]["bottom"],
                        parts[i + grid_x]["strips"]["top"],
                        offsets[i],
                        offsets[i + grid_x],
                    )
                )
    pairs = np.concatenate([c[0] for c in chunks]).astype(np.int64).reshape(-1, 2)
    boundary = np.concatenate([c[1] for c in chunks]).astype(np.float64)
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))
    return pairs[order], boundary[order]
