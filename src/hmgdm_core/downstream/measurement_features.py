"""Hand-crafted patch features: each graph's entity measurements pooled into one vector.

The baseline of ``benchmarks/representation.py`` and, appended to the learned patch embeddings, the hybrid
features the patch-predictions widget can classify.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch_geometric.data import Data

from hmgdm_core.errors import InputError

__all__ = ["pooled_measurements"]


def pooled_measurements(graphs: Sequence[Data]) -> np.ndarray:
    """Mean and std over each graph's nodes of ``node_meas`` and over its edges of ``edge_meas``.

    Parameters
    ----------
    graphs : sequence of Data
        Graphs following the graph contract, with the same measurement columns (M per node, K per edge).

    Returns
    -------
    ndarray, shape (G, 2M + 2K), float32
        Per graph ``[mean node_meas, std node_meas, mean edge_meas, std edge_meas]``; the halves of a graph
        without nodes or edges are 0; no graphs give shape (0, 0).

    Raises
    ------
    InputError
        If the graphs' measurement columns differ.
    """
    rows = []
    widths = None
    for index, graph in enumerate(graphs):
        parts = []
        tables = (graph.node_meas.numpy(), graph.edge_meas.numpy())
        shape = tuple(table.shape[1] for table in tables)
        if widths is not None and shape != widths:
            raise InputError(
                f"graph {index} has {shape[0]} node and {shape[1]} edge measurements, the first had "
                f"{widths[0]} and {widths[1]}: pool graphs built with the same settings"
            )
        widths = shape
        for table in tables:
            empty = len(table) == 0
            zeros = np.zeros(table.shape[1])
            parts += [zeros if empty else table.mean(0), zeros if empty else table.std(0)]
        rows.append(np.concatenate(parts))
    return np.asarray(rows, dtype=np.float32) if rows else np.zeros((0, 0), np.float32)

