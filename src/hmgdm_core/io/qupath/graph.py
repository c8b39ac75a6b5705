"""An entity graph as QuPath objects: one point object per node, all edges as one locked line annotation.

The graph file keeps node points, not outlines, so nodes become Point ROIs: ``detection`` for
nuclei, ``tile`` for tissue superpixels (QuPath's own superpixels are tiles), each with the
node's ``node_meas`` as measurements. For outlines, export the entities with
:func:`~hmgdm_core.io.qupath.write.entity_features` instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from torch_geometric.data import Data

from hmgdm_core.io.jsonio import gc_paused
from hmgdm_core.io.qupath.write import COORDINATE_DECIMALS, edge_feature, measurement_rows, new_ids, write_qupath

__all__ = ["graph_features", "write_graph_qupath"]


def _pairs(data: Data) -> np.ndarray:
    """One ``(a, b)`` row per undirected pair, ``a < b``."""
    edges = data.edge_index.numpy().T
    return np.unique(np.sort(edges, axis=1), axis=0) if len(edges) else np.zeros((0, 2), np.int64)


def graph_features(data: Data) -> list[dict]:
    """QuPath features of an entity graph.

    Parameters
    ----------
    data : Data
        An entity graph (``pos`` level-0 (y, x) pixels, ``edge_index``, ``node_meas`` and
        ``node_meas_names``, ``kind``); see :mod:`hmgdm_core.graph.contract`.

    Returns
    -------
    list of dict
        N Point features (``id`` a fresh UUID, ``name`` the entity id) followed by one locked
        ``MultiLineString`` annotation of the P undirected edges.
    """
    pos = data.pos.double().numpy().reshape(-1, 2)
    meas = data.node_meas.double().numpy()
    rows = measurement_rows({name: meas[:, k] for k, name in enumerate(data.node_meas_names)}, len(pos))
    object_type = "tile" if data.kind == "tissue" else "detection"
    with gc_paused():
        xy = np.round(pos[:, ::-1], COORDINATE_DECIMALS).tolist()
    entity_ids = data.entity_id.tolist()
    features = [
        {
            "type": "Feature",
            "id": uid,
            "geometry": {"type": "Point", "coordinates": point},
            "properties": {"objectType": object_type, "name": str(entity), "measurements": row},
        }
        for uid, point, entity, row in zip(new_ids(len(xy)), xy, entity_ids, rows, strict=True)
    ]
    features.append(edge_feature(pos, _pairs(data), name=f"{data.kind} graph edges"))
    return features


def write_graph_qupath(data: Data, path: str | os.PathLike[str]) -> Path:
    """Write an entity graph as a QuPath ``.geojson`` (see :func:`graph_features`); returns the path."""
    return write_qupath(graph_features(data), path)
