"""node_subgraph and inside_polygon: induced subgraphs stay in the contract."""

import numpy as np
import pytest
import torch

from hmgdm_core.errors import InputError
from hmgdm_core.graph import GraphConfig, graph_from_image, validate_graph
from hmgdm_core.graph.subgraph import inside_polygon, node_subgraph
from hmgdm_core.io import Region


@pytest.fixture(scope="module")
def graph(he_crop):
    rows, cols = he_crop.shape[:2]
    return graph_from_image(he_crop, 0.25, GraphConfig(kind="nuclei"), Region(0, 0, rows, cols, 0.25))


def test_keep_all_is_identity(graph):
    same = node_subgraph(graph, np.ones(graph.num_nodes, bool))
    validate_graph(same)
    assert torch.equal(same.x, graph.x) and torch.equal(same.pos, graph.pos)
    assert same.edge_index.shape == graph.edge_index.shape


def test_induced_subgraph(graph):
    rng = np.random.default_rng(0)
    keep = rng.random(graph.num_nodes) < 0.5
    sub = node_subgraph(graph, keep)
    validate_graph(sub)
    assert sub.num_nodes == keep.sum()
    np.testing.assert_array_equal(sub.entity_id.numpy(), graph.entity_id.numpy()[keep])
    kept_ids = graph.entity_id.numpy()[keep]
    # Exactly the pairs whose two nodes survive, as entity-id pairs.
    def id_pairs(g):
        ids = g.entity_id.numpy()
        return {tuple(sorted((ids[a], ids[b]))) for a, b in g.edge_index.T.numpy()}
    expected = {p for p in id_pairs(graph) if p[0] in kept_ids and p[1] in kept_ids}
    assert id_pairs(sub) == expected
    with pytest.raises(InputError, match="boolean mask"):
        node_subgraph(graph, keep[:-1])


def test_inside_polygon():
    square = np.array([[0, 0], [0, 10], [10, 10], [10, 0]])
    inside = inside_polygon(np.array([[5, 5], [11, 5], [-1, -1], [9.9, 0.1]]), square)
    np.testing.assert_array_equal(inside, [True, False, False, True])
    with pytest.raises(InputError, match="3 vertices"):
        inside_polygon(np.zeros((1, 2)), square[:2])
