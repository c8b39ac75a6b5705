"""Pooled entity measurements: the hand-crafted patch features and the measurement half of the hybrid ones."""

import numpy as np
import pytest
import torch

from hmgdm_core.downstream import pooled_measurements
from hmgdm_core.errors import InputError


def test_each_row_is_the_mean_and_spread_of_its_graphs_measurements(small_patch_graphs):
    graphs = small_patch_graphs
    features = pooled_measurements(graphs)
    m, k = graphs[0].node_meas.shape[1], graphs[0].edge_meas.shape[1]
    assert features.shape == (len(graphs), 2 * m + 2 * k) and features.dtype == np.float32
    for row, graph in zip(features, graphs, strict=True):
        nodes, edges = graph.node_meas.numpy(), graph.edge_meas.numpy()
        expected = np.concatenate([nodes.mean(0), nodes.std(0), edges.mean(0), edges.std(0)])
        np.testing.assert_allclose(row, expected, rtol=1e-5, atol=1e-6)
    # Patches with different tissue differ (the features carry information), and the order follows the graphs.
    assert not np.allclose(features[0], features[1])
    np.testing.assert_array_equal(pooled_measurements(graphs[::-1]), features[::-1])


def test_a_graph_without_edges_has_zero_edge_halves_and_mixed_columns_are_refused(small_patch_graphs):
    graph = small_patch_graphs[0].clone()
    graph.edge_index = torch.zeros((2, 0), dtype=torch.long)
    graph.edge_meas = graph.edge_meas[:0]
    m = graph.node_meas.shape[1]
    row = pooled_measurements([graph])[0]
    assert np.all(row[2 * m :] == 0) and np.any(row[: 2 * m] != 0)
    assert pooled_measurements([]).shape[0] == 0
    other = small_patch_graphs[1].clone()
    other.node_meas = other.node_meas[:, :-1]
    with pytest.raises(InputError, match="same settings"):
        pooled_measurements([small_patch_graphs[0], other])
