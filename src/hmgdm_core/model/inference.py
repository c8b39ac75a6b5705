"""The embedding pass over whole graphs (no mask, no noise), with the maps before the first propagation folded.

The linear maps between a feature row and the encoder's first propagation become one map per entity kind.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch_geometric.data import Batch, Data

from hmgdm_core.graph.contract import collate
from hmgdm_core.masking import no_mask
from hmgdm_core.model.edge_pairs import pair_rows
from hmgdm_core.model.encoder import EncoderOutput
from hmgdm_core.model.hmgdm import HMGDM

__all__ = ["FoldedMaps", "encode_graphs", "folded_input_maps"]


FoldedMaps = tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]


@torch.no_grad()
def folded_input_maps(model: HMGDM) -> FoldedMaps | None:
    r"""One affine map (F → H) per entity kind for everything the encoder applies before its first propagation.

    Without input LayerNorm, index RoPE and centroid code, a feature row passes three linear maps in a row:
    the input projection (after the stored standardisation), the encoder's ``pre_*`` layer and the first
    convolution's projection :math:`\Theta_0`, so

    .. math:: \Theta_0 (W_p (W_i (x - m) / s + b_i) + b_p) = A x + c.

    Applying :math:`A` (H × F) costs H/D of the (F → D) input projection alone (half in every preset) and saves
    the other two products; the result is the same up to float rounding. Making :math:`A` costs about as much as
    projecting a few hundred rows, so it is made once per model state, not per batch.

    Parameters
    ----------
    model : HMGDM
        The network.

    Returns
    -------
    tuple or None
        ``(A, c)`` for nodes, then for edges: (H, F) and (H,) tensors; ``None`` when the model has input
        LayerNorm or index RoPE (not affine in the features), the centroid code (added between the maps), or
        no edge branch.
    """
    config = model.config
    if not config.edge_branch or config.input_layernorm or config.index_rope or config.centroid_encoding:
        return None
    maps = []
    kinds = (
        ("node", model.node_embedding, model.encoder.pre_node, model.encoder.node_convs[0]),
        ("edge", model.edge_embedding, model.encoder.pre_edge, model.encoder.edge_convs[0]),
    )
    for kind, embedding, pre, conv in kinds:
        weight, bias = embedding.lin.weight, embedding.lin.bias
        if model.config.standardise_inputs:
            weight = weight / getattr(model, f"{kind}_std")
            bias = bias - weight @ getattr(model, f"{kind}_mean")
        first = conv.lin.weight @ pre.weight  # (H, D) before (D, F): the cheaper order
        maps.append((first @ weight, first @ bias + conv.lin.weight @ pre.bias))
    return maps[0], maps[1]


def encode_graphs(
    model: HMGDM, graphs: Sequence[Data], device: torch.device, maps: FoldedMaps | None
) -> tuple[Batch, EncoderOutput]:
    """``model.encode`` of the batch of ``graphs`` under :func:`~hmgdm_core.masking.no_mask`, and the batch.

    With the folded maps, each graph's node rows and one edge row per undirected pair go through them on their
    own and only the H-wide rows are joined: the (N, F) and (E, F) features are never copied into a batch, and
    the pass costs about half as much on a CPU (``benchmarks/embed.py``). Without them the graphs are batched
    and encoded as they are.

    Parameters
    ----------
    model : HMGDM
        The network, already on ``device``.
    graphs : sequence of Data
        Graphs following the graph contract, features in the data's units.
    device : torch.device
        Where to compute.
    maps : tuple or None
        :func:`folded_input_maps` of the model as it is now, on ``device``; ``None`` encodes the batch as it is.

    Returns
    -------
    structure : Batch
        The batch's ``edge_index``, ``pos``, ``batch`` and ``ptr``; without ``x`` and ``edge_attr`` on the
        folded path.
    encoded : EncoderOutput
        As ``model.encode(batch, no_mask(...))``.

    Raises
    ------
    InputError
        If the graphs' feature width is not the model's.
    """
    for graph in graphs:
        model.check_feature_width(graph.x.shape[1])
    structure = Batch.from_data_list(
        [Data(edge_index=g.edge_index, pos=g.pos, num_nodes=g.num_nodes) for g in graphs]
    ).to(device)
    pairs = None if maps is None else pair_rows(structure.edge_index)
    if pairs is None:
        batch = collate(graphs).to(device)
        return batch, model.encode(batch, no_mask(batch.num_nodes, batch.edge_index.shape[1], device))
    (node_weight, node_bias), (edge_weight, edge_bias) = maps
    h_node, h_pair = [], []
    for graph in graphs:
        first = (graph.edge_index[0] < graph.edge_index[1]).nonzero().squeeze(1)
        # Graphs built here list one direction of every pair first (graph.topology.directed_edges), usually the
        # one with source < target: those rows are then a view, not a copy.
        prefix = first.numel() == 0 or int(first[-1]) == first.numel() - 1
        rows = graph.edge_attr[: first.numel()] if prefix else graph.edge_attr[first]
        h_node.append(torch.nn.functional.linear(graph.x.to(device), node_weight, node_bias))
        h_pair.append(torch.nn.functional.linear(rows.to(device), edge_weight, edge_bias))
    return structure, model.encoder(torch.cat(h_node), torch.cat(h_pair), structure.edge_index, pairs, projected=True)
