"""The contract's layout: measurement tables and both edge directions, from per-pair parts.

Shared by one-shot building (:mod:`hmgdm_core.graph.build`) and tiled building
(:mod:`hmgdm_core.graph.tiling`), so both produce identical graphs from identical parts.
"""

from __future__ import annotations

import numpy as np
import torch

from hmgdm_core.entities.table import SHAPE_COLUMNS
from hmgdm_core.graph.contract import EntityGraph
from hmgdm_core.graph.topology import directed_edges
from hmgdm_core.io.region import Region

__all__ = ["NODE_MEASUREMENTS", "assemble_graph", "edge_measurements", "node_measurements"]

NODE_MEASUREMENTS = ("area_um2", "mean_r", "mean_g", "mean_b", "od_h", "od_e")
"""Columns of ``node_meas`` (the :data:`~hmgdm_core.entities.SHAPE_COLUMNS` follow with ``shape_features``)."""


def node_measurements(table: dict[str, np.ndarray], shape_features: bool) -> tuple[torch.Tensor, list[str]]:
    """The ``node_meas`` tensor and its column names from an entity table.

    Parameters
    ----------
    table : dict of str to ndarray
        Entity table (:class:`~hmgdm_core.entities.Entities`), columns of length N.
    shape_features : bool
        Append the shape columns (the table must hold them).

    Returns
    -------
    meas : Tensor, shape (N, M), float32
    names : list of str
        The M column names.
    """
    names = list(NODE_MEASUREMENTS) + (list(SHAPE_COLUMNS) if shape_features else [])
    n = len(table["id"])
    meas = (
        np.stack([np.asarray(table[name], dtype=np.float32) for name in names], axis=1)
        if n
        else np.zeros((0, len(names)), np.float32)
    )
    return torch.from_numpy(np.ascontiguousarray(meas, dtype=np.float32)), names


def edge_measurements(
    points: np.ndarray, pairs: np.ndarray, boundary_px: np.ndarray, kind: str, mpp: float
) -> tuple[torch.Tensor, list[str]]:
    """Per-pair edge measurements.

    Parameters
    ----------
    points : ndarray, shape (N, 2)
        Node points in image pixels.
    pairs : ndarray, shape (P, 2), int
        Node pairs.
    boundary_px : ndarray, shape (P,)
        Shared boundary length in pixels (used for tissue graphs).
    kind : str
        ``'tissue'`` or ``'nuclei'``.
    mpp : float
        µm per image pixel.

    Returns
    -------
    meas : Tensor, shape (P, K), float32
        ``distance_um`` (between the node points) and, for tissue, ``boundary_um``.
    names : list of str
        The K column names.
    """
    distance = np.linalg.norm(points[pairs[:, 0]] - points[pairs[:, 1]], axis=1) * mpp if len(pairs) else np.zeros(0)
    cols, names = [distance], ["distance_um"]
    if kind == "tissue":
        cols.append(boundary_px * mpp)
        names.append("boundary_um")
    return torch.from_numpy(np.stack(cols, axis=1).astype(np.float32)), names


def assemble_graph(
    *,
    kind: str,
    x: torch.Tensor,
    pairs: np.ndarray,
    pair_attr: torch.Tensor,
    pair_meas: torch.Tensor,
    edge_meas_names: list[str],
    node_meas: torch.Tensor,
    node_meas_names: list[str],
    pos: np.ndarray,
    entity_id: np.ndarray,
    mpp: float,
    region: Region,
    window: int,
) -> EntityGraph:
    """Put the parts of a graph into the contract's layout.

    Parameters
    ----------
    kind : str
        Entity kind.
    x : Tensor, shape (N, F), float32
        Node windows.
    pairs : ndarray, shape (P, 2), int
        Undirected node pairs; edge ``p`` is ``a → b`` and edge ``P + p`` is ``b → a``.
    pair_attr : Tensor, shape (P, F), float32
        One edge window per pair, given to both directions.
    pair_meas : Tensor, shape (P, K), float32
        Edge measurements per pair.
    edge_meas_names : list of str
        Their K names.
    node_meas : Tensor, shape (N, M), float32
        Node measurements.
    node_meas_names : list of str
        Their M names.
    pos : ndarray, shape (N, 2)
        Node points in level-0 (y, x) pixels.
    entity_id : ndarray, shape (N,), int
        Label of each node's entity.
    mpp : float
        µm per pixel of the analysed image.
    region : Region
        The analysed region.
    window : int
        Window side w (F = 3·w²).

    Returns
    -------
    EntityGraph
    """
    edge_index, edge_pair = directed_edges(pairs)
    return EntityGraph(
        x=x,
        edge_index=edge_index,
        edge_pair=edge_pair,
        edge_attr=torch.cat([pair_attr, pair_attr]),
        pos=torch.from_numpy(np.asarray(pos, dtype=np.float32).reshape(-1, 2)),
        entity_id=torch.from_numpy(np.asarray(entity_id, dtype=np.int64)),
        node_meas=node_meas,
        node_meas_names=node_meas_names,
        edge_meas=torch.cat([pair_meas, pair_meas]),
        edge_meas_names=edge_meas_names,
        kind=kind,
        mpp=float(mpp),
        region=region.to_dict(),
        window=int(window),
    )
