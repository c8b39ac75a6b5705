import torch

from hmgdm_core.downstream.pooling import GatedAttentionPooling


def _pool() -> GatedAttentionPooling:
    torch.manual_seed(0)
    return GatedAttentionPooling(in_channels=5, attention_channels=7).eval()


def test_changing_graph_b_leaves_graph_a_unchanged() -> None:
    pool = _pool()
    x_a, x_b = torch.randn(4, 5), torch.randn(6, 5)
    batch = torch.tensor([0] * 4 + [1] * 6)
    pooled, attention = pool(torch.cat([x_a, x_b]), batch)
    pooled_new, attention_new = pool(torch.cat([x_a, 10 * torch.randn(6, 5)]), batch)
    assert torch.allclose(pooled[0], pooled_new[0])
    assert torch.allclose(attention[:4], attention_new[:4])
    assert not torch.allclose(pooled[1], pooled_new[1])
    alone, _ = pool(x_a)
    assert torch.allclose(alone[0], pooled[0], atol=1e-6)


def test_attention_sums_to_one_per_graph_and_pooling_is_a_convex_combination() -> None:
    pool = _pool()
    x = torch.randn(9, 5)
    batch = torch.tensor([0, 0, 1, 1, 1, 1, 2, 2, 2])
    pooled, attention = pool(x, batch)
    assert pooled.shape == (3, 5)
    assert attention.shape == (9,)
    assert (attention > 0).all()
    sums = torch.zeros(3).index_add_(0, batch, attention)
    assert torch.allclose(sums, torch.ones(3))
    for g in range(3):
        nodes = x[batch == g]
        assert (pooled[g] <= nodes.max(0).values + 1e-6).all()
        assert (pooled[g] >= nodes.min(0).values - 1e-6).all()


def test_node_order_within_a_graph_does_not_matter() -> None:
    pool = _pool()
    x = torch.randn(6, 5)
    pooled, attention = pool(x)
    perm = torch.randperm(6)
    pooled_perm, attention_perm = pool(x[perm])
    assert torch.allclose(pooled, pooled_perm, atol=1e-6)
    assert torch.allclose(attention[perm], attention_perm, atol=1e-6)


def test_empty_trailing_graph_pools_to_zero_and_repr_names_sizes() -> None:
    pool = _pool()
    pooled, _ = pool(torch.randn(3, 5), torch.zeros(3, dtype=torch.long), num_graphs=2)
    assert torch.equal(pooled[1], torch.zeros(5))
    assert repr(pool) == "GatedAttentionPooling(5, attention_channels=7)"
