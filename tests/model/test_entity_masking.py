import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from model_graphs import random_graph
from torch_geometric.data import Batch

from hmgdm_core.masking import MaskConfig, no_mask, sample_mask


def draw(batch, config=None, seed=0):
    return sample_mask(
        batch.edge_index,
        batch.edge_pair,
        batch.batch,
        batch.num_graphs,
        config or MaskConfig(mode="strict"),
        generator=torch.Generator().manual_seed(seed),
    )


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(1, 25), min_size=1, max_size=4), seed=st.integers(0, 10_000))
def test_strict_split_is_complementary_per_graph_and_pair_consistent(sizes, seed):
    batch = Batch.from_data_list([random_graph(n, 4, seed=seed + i) for i, n in enumerate(sizes)])
    mask = draw(batch, seed=seed)
    # Exactly ⌊0.6·N_g⌋ target nodes in every graph.
    for g, n in enumerate(sizes):
        assert int(mask.node_target[batch.batch == g].sum()) == int(0.6 * n)
    # Both directions of a pair share their fate; ⌊0.6·P_g⌋ target pairs per graph.
    edge_graph = batch.batch[batch.edge_index[0]]
    for g in range(len(sizes)):
        in_g = edge_graph == g
        pairs = batch.edge_pair[in_g]
        targets = mask.edge_target[in_g]
        for p in pairs.unique():
            assert targets[pairs == p].unique().numel() == 1
        assert int(targets.sum()) // 2 == int(0.6 * pairs.unique().numel())
    # The encoder sees only condition entities, and no edge touching a target node.
    assert not torch.any(mask.node_encoded & mask.node_target)
    assert not torch.any(mask.edge_encoded & mask.edge_target)
    touches = mask.node_target[batch.edge_index[0]] | mask.node_target[batch.edge_index[1]]
    assert not torch.any(mask.edge_encoded & touches)
    assert torch.equal(mask.node_context | mask.node_target, torch.ones_like(mask.node_target))


def test_split_is_redrawn_each_step_and_reproducible_per_seed():
    batch = Batch.from_data_list([random_graph(40, 4)])
    assert torch.equal(draw(batch, seed=1).node_target, draw(batch, seed=1).node_target)
    assert not torch.equal(draw(batch, seed=1).node_target, draw(batch, seed=2).node_target)


def test_official_mode_keeps_the_released_leaks():
    batch = Batch.from_data_list([random_graph(30, 4, seed=1), random_graph(20, 4, seed=2)])
    mask = draw(batch, MaskConfig(mode="official"))
    assert int(mask.node_target.sum()) == int(0.6 * 50)  # one permutation over the batch
    assert int(mask.edge_target.sum()) == int(0.6 * batch.num_edges)  # directed edges
    assert torch.all(mask.node_encoded)  # the encoder reads target nodes
    assert torch.equal(mask.edge_encoded, ~mask.edge_target)


def test_no_mask_and_degenerate_graphs():
    single = Batch.from_data_list([random_graph(1, 4)])
    mask = draw(single)
    assert mask.edge_target.numel() == 0 and not mask.node_target.any()
    empty = no_mask(5, 8)
    assert empty.node_context.all() and empty.edge_context.all()
    with pytest.raises(ValueError, match="node_ratio"):
        draw(single, MaskConfig(node_ratio=1.5))


def test_split_of_a_graph_depends_only_on_its_own_keys():
    graphs = [random_graph(11, 4, seed=1), random_graph(8, 4, seed=2)]
    keys = [torch.rand(g.num_nodes, dtype=torch.float64) for g in graphs]
    edge_keys = [torch.rand(g.num_edges, dtype=torch.float64) for g in graphs]
    alone = Batch.from_data_list(graphs[1:])
    both = Batch.from_data_list(graphs)
    split_alone = sample_mask(alone.edge_index, alone.edge_pair, alone.batch, 1, MaskConfig(), keys[1], edge_keys[1])
    split_both = sample_mask(
        both.edge_index, both.edge_pair, both.batch, 2, MaskConfig(), torch.cat(keys), torch.cat(edge_keys)
    )
    assert torch.equal(split_both.node_target[11:], split_alone.node_target)
    assert torch.equal(split_both.edge_target[graphs[0].num_edges :], split_alone.edge_target)


def test_context_split_has_strict_targets_and_encodes_everything():
    batch = Batch.from_data_list([random_graph(n, 4, seed=n) for n in (5, 17, 30)])
    strict = draw(batch, MaskConfig(mode="strict"), seed=3)
    context = draw(batch, MaskConfig(mode="context"), seed=3)
    assert torch.equal(strict.node_target, context.node_target)
    assert torch.equal(strict.edge_target, context.edge_target)
    assert bool(context.node_encoded.all()) and bool(context.edge_encoded.all()) and context.hide_targets
    assert not strict.hide_targets
