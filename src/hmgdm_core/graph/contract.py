"""The entity-graph contract every later stage codes against, and its validator.

An entity graph is a :class:`torch_geometric.data.Data` (the subclass :class:`EntityGraph`)
with these attributes:

========================  ==================  ==========================================================
attribute                 dtype, shape        meaning
========================  ==================  ==========================================================
``x``                     float32 [N, F]      node windows, channel-first flattened
                                              (``reshape(N, 3, w, w)``), values in [-1, 1]; F = 3·w²
``edge_index``            int64 [2, E]        both directions of every undirected pair, no self loops
``edge_pair``             int64 [E]           pair id 0..P-1 shared by the two directions (P = E / 2)
``edge_attr``             float32 [E, F]      edge windows at the midpoint of the two node points,
                                              same layout as ``x``, equal for the two directions
``pos``                   float32 [N, 2]      node points in level-0 (y, x) pixels of the slide
``entity_id``             int64 [N]           the node's label in the entity label image
``node_meas``             float32 [N, M]      interpretable measurements, columns ``node_meas_names``
``edge_meas``             float32 [E, K]      edge measurements, columns ``edge_meas_names``
``kind``                  str                 ``'tissue'`` or ``'nuclei'``
``mpp``                   float               µm per pixel the entities were found at
``region``                dict                :meth:`hmgdm_core.io.Region.to_dict` of the analysed box
``window``                int                 window side w in pixels
``y``, ``group``          optional            graph label (int64 [1]) and group id (str, e.g. slide)
========================  ==================  ==========================================================

Graphs with N = 0, N = 1 or E = 0 are valid (``edge_index`` of shape [2, 0], ``edge_attr``
of shape [0, F]). When graphs are batched, ``edge_pair`` is offset by each graph's pair count,
so pair ids stay unique across a batch and a mask can treat a pair as one entity.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch_geometric.data import Batch, Data

from hmgdm_core.errors import InputError

__all__ = ["ENTITY_KINDS", "MODEL_FIELDS", "EntityGraph", "collate", "validate_graph"]

ENTITY_KINDS = ("tissue", "nuclei")
"""The entity kinds a graph can be made of."""


class EntityGraph(Data):
    """A :class:`~torch_geometric.data.Data` whose ``edge_pair`` ids are offset when batched."""

    def __inc__(self, key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        if key == "edge_pair":
            return self.edge_index.size(1) // 2
        return super().__inc__(key, value, *args, **kwargs)


MODEL_FIELDS = ("x", "edge_index", "edge_pair", "edge_attr", "pos")
"""The attributes the networks read; :func:`collate` batches only these."""


def collate(graphs: Sequence[Data]) -> Batch:
    """Batch graphs for a network, keeping only :data:`MODEL_FIELDS`.

    Labels, groups and other per-graph metadata are left out, so graphs from several sources (labelled Kather
    tiles beside unlabelled slide patches, say) batch together: :meth:`Batch.from_data_list` needs every graph
    to have the same attributes.

    Parameters
    ----------
    graphs : sequence of Data
        Entity graphs (``pos`` may be missing; it is then missing from the batch).

    Returns
    -------
    Batch
        Of :class:`EntityGraph`, so ``edge_pair`` ids are offset per graph; ``batch`` and ``ptr`` as usual.
    """
    return Batch.from_data_list(
        [
            EntityGraph(num_nodes=g.num_nodes, **{k: g[k] for k in MODEL_FIELDS if getattr(g, k, None) is not None})
            for g in graphs
        ]
    )


def _fail(message: str) -> None:
    raise InputError(f"Invalid entity graph: {message}")


def _check_tensor(data: Data, name: str, dtype: torch.dtype, shape: tuple[int | None, ...]) -> torch.Tensor:
    value = getattr(data, name, None)
    if not isinstance(value, torch.Tensor):
        _fail(f"`{name}` must be a tensor, got {type(value).__name__}.")
    if value.dtype != dtype:
        _fail(f"`{name}` must be {dtype}, got {value.dtype}.")
    if value.dim() != len(shape) or any(s is not None and s != v for s, v in zip(shape, value.shape, strict=False)):
        want = ", ".join("*" if s is None else str(s) for s in shape)
        _fail(f"`{name}` must have shape [{want}], got {list(value.shape)}.")
    return value


def validate_graph(data: Data) -> None:
    """Check that ``data`` follows the entity-graph contract (see the module docstring).

    Parameters
    ----------
    data : Data
        The graph.

    Raises
    ------
    InputError
        Naming the first attribute that breaks the contract and how.
    """
    x = _check_tensor(data, "x", torch.float32, (None, None))
    n, f = x.shape
    edge_index = _check_tensor(data, "edge_index", torch.int64, (2, None))
    e = edge_index.shape[1]
    edge_pair = _check_tensor(data, "edge_pair", torch.int64, (e,))
    edge_attr = _check_tensor(data, "edge_attr", torch.float32, (e, f))
    _check_tensor(data, "pos", torch.float32, (n, 2))
    _check_tensor(data, "entity_id", torch.int64, (n,))
    for name, rows in (("node_meas", n), ("edge_meas", e)):
        meas = _check_tensor(data, name, torch.float32, (rows, None))
        names = getattr(data, f"{name}_names", None)
        if not isinstance(names, list) or len(names) != meas.shape[1]:
            _fail(f"`{name}_names` must be a list naming the {meas.shape[1]} columns of `{name}`.")
    if data.kind not in ENTITY_KINDS:
        _fail(f"`kind` must be one of {ENTITY_KINDS}, got {data.kind!r}.")
    if not (isinstance(data.mpp, float) and data.mpp > 0):
        _fail(f"`mpp` must be a positive float (µm per pixel), got {data.mpp!r}.")
    if not isinstance(data.region, dict):
        _fail("`region` must be a dict (Region.to_dict()).")
    window = data.window
    if not isinstance(window, int) or 3 * window * window != f:
        _fail(f"`window` ({window!r}) must be an int w with 3·w² = F = {f}.")
    for name, t in (("x", x), ("edge_attr", edge_attr)):
        if t.numel() and not (torch.isfinite(t).all() and t.abs().max() <= 1.0 + 1e-6):
            _fail(f"`{name}` must be finite and within [-1, 1].")
    if e == 0:
        return
    if e % 2:
        _fail(f"E = {e} is odd; both directions of every pair must be stored.")
    if int(edge_index.min()) < 0 or int(edge_index.max()) >= n:
        _fail(f"`edge_index` refers to nodes outside 0..{n - 1}.")
    if bool((edge_index[0] == edge_index[1]).any()):
        _fail("`edge_index` contains self loops.")
    order = torch.argsort(edge_pair, stable=True)
    if not torch.equal(edge_pair[order], torch.arange(e // 2).repeat_interleave(2)):
        _fail("`edge_pair` must use every id 0..P-1 exactly twice (P = E / 2).")
    first, second = order[0::2], order[1::2]
    if not torch.equal(edge_index[:, first], edge_index[:, second].flip(0)):
        _fail("the two edges sharing a pair id must be the two directions of one node pair.")
    lo = torch.minimum(edge_index[0, first], edge_index[1, first])
    hi = torch.maximum(edge_index[0, first], edge_index[1, first])
    if torch.unique(lo * n + hi).numel() != e // 2:
        _fail("a node pair occurs under two pair ids (duplicate edges).")
    if not torch.equal(edge_attr[first], edge_attr[second]):
        _fail("`edge_attr` must be equal for the two directions of a pair.")
