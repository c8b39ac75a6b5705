"""One call from a slide region to its entity graph: one shot when it fits a tile, tiled otherwise."""

from __future__ import annotations

from hmgdm_core.graph.build import GraphConfig, graph_from_image
from hmgdm_core.graph.contract import EntityGraph
from hmgdm_core.graph.tiling import Progress, RegionSource, tiled_graph
from hmgdm_core.io.region import Region
from hmgdm_core.io.slide import Slide

__all__ = ["build_graph", "graph_summary"]


def build_graph(
    slide: Slide,
    region: Region,
    config: GraphConfig | None = None,
    *,
    tile_size: int = 2048,
    scheduler: str = "threads",
    progress: Progress | None = None,
) -> EntityGraph:
    """The entity graph of a slide region.

    Parameters
    ----------
    slide : Slide
        An open slide with a known resolution.
    region : Region
        Level-0 box and the resolution to analyse it at (``region.mpp``).
    config : GraphConfig, optional
        Entity kind, entity and topology parameters, window size (default: ``GraphConfig()``).
    tile_size : int
        Regions whose read size exceeds this many pixels on a side are processed tile by tile
        (:func:`~hmgdm_core.graph.tiling.tiled_graph`); smaller ones in one shot.
    scheduler : str
        Dask scheduler for tiled regions: ``'threads'``, ``'sync'``, ``'processes'`` or a
        ``dask.distributed`` scheduler address.
    progress : callable, optional
        ``progress(done, total)`` per tile task of a tiled region (see
        :func:`~hmgdm_core.graph.tiling.tiled_graph`); not called for a one-shot region.

    Returns
    -------
    EntityGraph
        ``pos`` in level-0 (y, x) pixels of ``slide``. A region without entities gives N = 0.
    """
    config = config or GraphConfig()
    region.check_inside(slide.shape)
    rows, cols = region.shape
    if rows <= tile_size and cols <= tile_size:
        return graph_from_image(slide.read(region), float(region.mpp), config, region)
    source = RegionSource(region, slide_path=str(slide.path), slide_mpp=slide.mpp)
    return tiled_graph(source, config, tile_size, scheduler, progress)


def graph_summary(graph: EntityGraph) -> str:
    """A one-line description of a graph for reports and the demo.

    Parameters
    ----------
    graph : EntityGraph
        The graph.

    Returns
    -------
    str
        Kind, node and undirected-edge counts, mean degree, window and the region.
    """
    n = graph.num_nodes
    pairs = graph.edge_index.shape[1] // 2
    degree = 2 * pairs / n if n else 0.0
    r = graph.region
    return (
        f"{graph.kind} graph: {n} nodes, {pairs} undirected edges (mean degree {degree:.1f}), "
        f"{graph.window}x{graph.window} windows -> {graph.x.shape[1]} features, region y={r['y']} x={r['x']} "
        f"{r['height']}x{r['width']} px at {r['mpp']:.3f} µm/px"
    )
