"""An entity graph as the JSON that tiatoolbox's viewer (TIAViz) overlays on a slide.

TIAViz reads ``{"coordinates": [[x, y], ...], "edge_index": [[src...], [dst...]], "feats":
[[...], ...], "feat_names": [...]}`` (tiatoolbox ``visualization/bokeh_app/main.py``,
``handle_graph_layer``), coordinates in baseline (level-0) pixels ``(x, y)``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from torch_geometric.data import Data

from hmgdm_core.io.atomic import atomic_path
from hmgdm_core.io.jsonio import dumps

__all__ = ["graph_to_tiatoolbox", "write_graph_tiatoolbox"]


def graph_to_tiatoolbox(data: Data) -> dict:
    """The TIAViz graph dict of an entity graph.

    Parameters
    ----------
    data : Data
        An entity graph: ``pos`` [N, 2] level-0 (y, x) pixels, ``edge_index`` [2, E],
        ``node_meas`` [N, M] with ``node_meas_names``.

    Returns
    -------
    dict
        ``coordinates`` (N lists ``[x, y]``, level-0 pixels), ``edge_index`` (2 lists of E
        node indices, both directions as in the graph), ``feats`` (N lists of M floats; non-finite
        values as ``None``, since JSON has no NaN) and ``feat_names`` (M names).
    """
    feats = [[v if math.isfinite(v) else None for v in row] for row in data.node_meas.double().tolist()]
    return {
        "coordinates": np.round(data.pos.double().numpy()[:, ::-1], 2).tolist(),
        "edge_index": data.edge_index.tolist(),
        "feats": feats,
        "feat_names": list(data.node_meas_names),
    }


def write_graph_tiatoolbox(data: Data, path: str | os.PathLike[str]) -> Path:
    """Write :func:`graph_to_tiatoolbox` of ``data`` to ``path`` (JSON, atomic); returns the path."""
    content = dumps(graph_to_tiatoolbox(data))
    with atomic_path(path) as tmp:
        tmp.write_bytes(content)
    return Path(path)
