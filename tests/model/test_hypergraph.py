"""The dual hypergraph's mean convolution is PyG's HypergraphConv, computed over a precomputed incidence."""

import pytest
import torch
from model_graphs import monuseg_graphs
from torch_geometric.data import Batch
from torch_geometric.nn import HypergraphConv

from hmgdm_core.model.edge_pairs import compacted_rows, pair_rows
from hmgdm_core.model.hypergraph import DualHypergraph, MeanHypergraphConv, dual_hypergraph


def _edge_sets(monuseg_dir):
    batch = Batch.from_data_list(monuseg_graphs(monuseg_dir, 2, 40))
    # A lone pair of edges between two nodes of their own: its node hyperedges hold one pair only.
    lone = torch.tensor([[batch.num_nodes, batch.num_nodes + 1], [batch.num_nodes + 1, batch.num_nodes]])
    edges = torch.cat([batch.edge_index, lone], dim=1)
    first, _ = pair_rows(edges)
    return edges, batch.num_nodes + 2, first


@pytest.mark.parametrize("paired", [False, True])
def test_mean_hypergraph_conv_is_pyg_hypergraph_conv(monuseg_dir, paired):
    """Same output and gradients (x, Θ, b) as PyG's forward, float32 to 1e-5, over both directions (hyperedges of
    two or more members) and over one direction per pair (one or more)."""
    edges, num_nodes, first = _edge_sets(monuseg_dir)
    if paired:
        edges = edges[:, first]
    min_size = 1 if paired else 2
    torch.manual_seed(0)
    ours = MeanHypergraphConv(24, 16)
    torch.manual_seed(0)
    pyg = HypergraphConv(24, 16)
    assert ours.state_dict().keys() == pyg.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), pyg.state_dict().values(), strict=True))
    with torch.no_grad():
        ours.bias.normal_()  # PyG initialises it to zero: make it count
        pyg.bias.copy_(ours.bias)
    x = torch.randn(edges.shape[1], 24, generator=torch.Generator().manual_seed(1))
    index, num_hyperedges = dual_hypergraph(edges, num_nodes, min_size)
    outputs, grads = [], []
    for conv, run in (
        (ours, lambda v: ours(v, DualHypergraph.of(edges, num_nodes, min_size))),
        (pyg, lambda v: pyg(v, index, num_edges=num_hyperedges)),
    ):
        v = x.clone().requires_grad_(True)
        out = run(v)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        outputs.append(out.detach())
        grads.append([v.grad, *(p.grad for p in conv.parameters())])
    torch.testing.assert_close(outputs[0], outputs[1], atol=1e-5, rtol=1e-4)
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_dual_hypergraph_normalisation_counts_members_and_memberships():
    # A path 0-1-2 with both directions: node 1's hyperedge holds all four directed edges.
    edges = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    graph = DualHypergraph.of(edges, 3)
    assert graph.num_hyperedges == 3  # nodes 0, 1, 2 (two members or more each); self-hyperedges are implicit
    assert (1 / graph.inv_size).squeeze(1).round().long().tolist() == [2, 4, 2]
    # Every directed edge is in its two end nodes' hyperedges and its own.
    assert (1 / graph.inv_degree).squeeze(1).round().long().tolist() == [3, 3, 3, 3]
    constant = torch.full((4, 2), 5.0)
    torch.testing.assert_close(graph.mean(constant), constant)  # a mean of means keeps a constant


def test_compacted_rows_point_into_the_flagged_rows():
    generator = torch.Generator().manual_seed(0)
    for size in (0, 1, 7, 300):
        flags = torch.rand(size, generator=generator) < 0.4
        values = torch.randn(size, 3, generator=generator)
        rows = compacted_rows(flags)
        assert rows.shape == flags.shape and rows.dtype == torch.int64
        assert torch.equal(values[flags][rows[flags]], values[flags])
        assert torch.equal(rows[flags], torch.arange(int(flags.sum())))
