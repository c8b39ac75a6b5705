"""Keep part of an entity graph: the nodes inside a drawn polygon, for example."""

from __future__ import annotations

import numpy as np
import torch

from hmgdm_core.errors import InputError
from hmgdm_core.graph.assemble import assemble_graph
from hmgdm_core.graph.contract import EntityGraph
from hmgdm_core.io.region import Region

__all__ = ["inside_polygon", "node_subgraph"]


def node_subgraph(graph: EntityGraph, keep: np.ndarray) -> EntityGraph:
    """The graph induced by the kept nodes: their edges, windows and measurements.

    Parameters
    ----------
    graph : EntityGraph
        A graph following the contract.
    keep : ndarray, shape (N,), bool
        Nodes to keep.

    Returns
    -------
    EntityGraph
        Nodes renumbered in their original order; a pair survives when both its nodes do,
        and pair ids are renumbered 0..P'-1.
    """
    keep = np.asarray(keep, dtype=bool)
    if keep.shape != (graph.num_nodes,):
        raise InputError(f"keep must be a boolean mask of the {graph.num_nodes} nodes, got shape {keep.shape}.")
    first = torch.argsort(graph.edge_pair, stable=True)[0::2]
    pairs = graph.edge_index[:, first].T.numpy()
    new_index = np.cumsum(keep) - 1
    kept_pairs = keep[pairs[:, 0]] & keep[pairs[:, 1]] if len(pairs) else np.zeros(0, dtype=bool)
    kept = torch.from_numpy(keep)
    kept_p = torch.from_numpy(kept_pairs)
    return assemble_graph(
        kind=graph.kind,
        x=graph.x[kept],
        pairs=new_index[pairs[kept_pairs]].reshape(-1, 2),
        pair_attr=graph.edge_attr[first][kept_p],
        pair_meas=graph.edge_meas[first][kept_p],
        edge_meas_names=list(graph.edge_meas_names),
        node_meas=graph.node_meas[kept],
        node_meas_names=list(graph.node_meas_names),
        pos=graph.pos[kept].numpy(),
        entity_id=graph.entity_id[kept].numpy(),
        mpp=graph.mpp,
        region=Region.from_dict(graph.region),
        window=graph.window,
    )


def inside_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Which points lie inside a polygon (both in the same (y, x) coordinates).

    Parameters
    ----------
    points : ndarray, shape (N, 2)
        Query points.
    polygon : ndarray, shape (V, 2)
        Vertices, in order; the polygon is closed implicitly.

    Returns
    -------
    ndarray, shape (N,), bool
    """
    from matplotlib.path import Path

    if len(polygon) < 3:
        raise InputError(f"a polygon needs at least 3 vertices, got {len(polygon)}.")
    return Path(np.asarray(polygon, dtype=np.float64)).contains_points(np.asarray(points, dtype=np.float64))
