"""The folded embedding pass computes what ``HMGDM.encode`` computes on the collated batch."""

from dataclasses import replace

import pytest
import torch
from model_graphs import monuseg_graphs, random_graph
from torch_geometric.data import Batch

from hmgdm_core.errors import InputError
from hmgdm_core.masking import no_mask
from hmgdm_core.model import HMGDM, ModelConfig
from hmgdm_core.model.inference import encode_graphs, folded_input_maps

SMALL = replace(ModelConfig(), embed_dim=64, hidden_dim=32, latent_mlp_dim=16)
CPU = torch.device("cpu")


def reversed_first(graph):
    """The same graph with each pair's target → source column listed first (no longer a prefix of source < target)."""
    p = graph.edge_index.shape[1] // 2
    order = torch.cat([torch.arange(p, 2 * p), torch.arange(p)])
    out = graph.clone()
    out.edge_index, out.edge_pair = graph.edge_index[:, order], graph.edge_pair[order]
    out.edge_attr = graph.edge_attr[order]
    return out


def fitted(config, graphs, seed=0):
    torch.manual_seed(seed)
    model = HMGDM(config).eval()
    if config.standardise_inputs:
        model.fit_standardisation(graphs)
    # Non-zero biases everywhere, so that folding them is tested too.
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("bias"):
                parameter.normal_(0, 0.1)
    return model


def assert_same_encoding(ours, reference):
    close = lambda a, b: a.shape == b.shape and torch.allclose(a, b, atol=1e-5, rtol=1e-4)  # noqa: E731
    for name in ("node_mu", "node_logvar", "edge_mu", "edge_logvar"):
        assert close(getattr(ours, name), getattr(reference, name)), name
    for skips in ("node_skips", "edge_skips"):
        assert all(close(a, b) for a, b in zip(getattr(ours, skips), getattr(reference, skips), strict=True)), skips


@pytest.mark.parametrize("standardise", [True, False])
def test_folded_pass_equals_encode_on_the_collated_batch(monuseg_dir, standardise):
    graphs = monuseg_graphs(monuseg_dir, 3, 40)
    graphs[1] = reversed_first(graphs[1])  # its pair rows are gathered, the others are views
    config = replace(SMALL, standardise_inputs=standardise)
    model = fitted(config, graphs)
    maps = folded_input_maps(model)
    assert maps is not None and maps[0][0].shape == (32, 3072) and maps[1][1].shape == (32,)
    batch = Batch.from_data_list(graphs)
    with torch.no_grad():
        structure, ours = encode_graphs(model, graphs, CPU, maps)
        reference = model.encode(batch, no_mask(batch.num_nodes, batch.edge_index.shape[1]))
    assert torch.equal(structure.edge_index, batch.edge_index) and torch.equal(structure.batch, batch.batch)
    assert getattr(structure, "x", None) is None  # the features were never collated
    assert_same_encoding(ours, reference)


def test_folded_maps_are_the_composed_layers_on_real_rows(monuseg_dir):
    graphs = monuseg_graphs(monuseg_dir, 2, 30)
    model = fitted(SMALL, graphs)
    (node_weight, node_bias), (edge_weight, edge_bias) = folded_input_maps(model)
    graph = graphs[0]
    with torch.no_grad():
        h_node, h_edge = model.embed_inputs(graph, graph.x, graph.edge_attr, standardise=True)
        node = model.encoder.node_convs[0].lin(model.encoder.pre_node(h_node))
        edge = model.encoder.edge_convs[0].lin(model.encoder.pre_edge(h_edge))
    assert torch.allclose(graph.x @ node_weight.T + node_bias, node, atol=1e-5, rtol=1e-4)
    assert torch.allclose(graph.edge_attr @ edge_weight.T + edge_bias, edge, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    "change",
    [
        {"input_layernorm": True},
        {"centroid_encoding": True},
        {"index_rope": True, "pair_tokens": False},
        {"edge_branch": False},
    ],
)
def test_models_that_cannot_fold_encode_the_collated_batch(change):
    graphs = [random_graph(9, 48, seed=1), random_graph(6, 48, seed=2)]
    config = replace(ModelConfig(), feature_dim=48, embed_dim=32, hidden_dim=16, latent_mlp_dim=8, **change)
    model = fitted(config, graphs)
    assert folded_input_maps(model) is None
    batch = Batch.from_data_list(graphs)
    with torch.no_grad():
        structure, ours = encode_graphs(model, graphs, CPU, None)
        reference = model.encode(batch, no_mask(batch.num_nodes, batch.edge_index.shape[1]))
    assert torch.equal(structure.x, batch.x)
    assert_same_encoding(ours, reference)


def test_edgeless_graphs_and_a_wrong_width_in_the_folded_pass():
    graphs = [random_graph(5, 48, k=0, seed=3), random_graph(8, 48, seed=4), random_graph(1, 48, seed=5)]
    config = replace(ModelConfig(), feature_dim=48, embed_dim=32, hidden_dim=16, latent_mlp_dim=8)
    model = fitted(config, graphs)
    batch = Batch.from_data_list(graphs)
    with torch.no_grad():
        _, ours = encode_graphs(model, graphs, CPU, folded_input_maps(model))
        reference = model.encode(batch, no_mask(batch.num_nodes, batch.edge_index.shape[1]))
    assert_same_encoding(ours, reference)
    with pytest.raises(InputError, match="48"):
        encode_graphs(model, [random_graph(4, 12, seed=6)], CPU, folded_input_maps(model))
