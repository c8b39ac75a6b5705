import json

import numpy as np
import pytest
import torch
from torch_geometric.loader import DataLoader

from hmgdm_core.errors import InputError
from hmgdm_core.graph import GraphConfig, GraphDataset, graph_from_image, load_graph, save_graph, validate_graph


@pytest.fixture(scope="module")
def graph(he_crop):
    return graph_from_image(he_crop, 0.25, GraphConfig(kind="nuclei"))


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda g: setattr(g, "edge_index", torch.cat([g.edge_index, torch.tensor([[0], [0]])], 1)), "edge_pair"),
        (lambda g: setattr(g, "x", g.x.double()), "float32"),
        (lambda g: setattr(g, "edge_pair", torch.zeros_like(g.edge_pair)), "edge_pair"),
        (lambda g: g.edge_index[:, 0].fill_(0), "self loops|two directions"),
        (lambda g: setattr(g, "pos", g.pos[:, :1]), "pos"),
        (lambda g: setattr(g, "kind", "cells"), "kind"),
        (lambda g: g.x.mul_(3), r"\[-1, 1\]"),
        (lambda g: g.edge_attr[0].add_(0.01), "edge_attr|\\[-1, 1\\]"),
    ],
)
def test_validate_graph_names_what_is_wrong(graph, breakage, message):
    broken = graph.clone()
    breakage(broken)
    with pytest.raises(InputError, match=message):
        validate_graph(broken)


def test_save_and_load_round_trip_without_pickle(graph, tmp_path):
    path = save_graph(graph, tmp_path / "g.pt")
    loaded = load_graph(path)
    for key in ("x", "edge_index", "edge_pair", "edge_attr", "pos", "entity_id", "node_meas", "edge_meas"):
        assert torch.equal(loaded[key], graph[key])
    for key in ("kind", "mpp", "region", "window", "node_meas_names", "edge_meas_names"):
        assert loaded[key] == graph[key]
    content = torch.load(path, weights_only=True)  # plain tensors and strings only
    assert content["columns"]["x/uint8/2"].dtype == torch.uint8  # 8-bit windows stored compactly
    assert json.loads(content["strings"]["meta"][0])["kind"] == "nuclei"


def test_float_features_that_are_not_pixels_survive_saving(graph, tmp_path):
    latent = graph.clone()
    latent.x = torch.tanh(torch.randn_like(latent.x))
    loaded = load_graph(save_graph(latent, tmp_path / "latent.pt"))
    assert torch.equal(loaded.x, latent.x)


def test_loading_something_else_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="No graph file"):
        load_graph(tmp_path / "missing.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(InputError, match="not an entity-graph file"):
        load_graph(tmp_path / "other.pt")


def test_dataset_batches_with_unique_pair_ids_and_round_trips(he_crop, tmp_path):
    graphs = []
    for i, crop in enumerate([he_crop[:150, :150], he_crop[150:300, :150], he_crop[:150, 150:300]]):
        g = graph_from_image(np.ascontiguousarray(crop), 0.25, GraphConfig(kind="nuclei"))
        g.y = torch.tensor([i])
        g.group = f"slide-{i % 2}"
        graphs.append(g)
    dataset = GraphDataset.from_graphs(graphs)
    assert dataset.labels.tolist() == [0, 1, 2] and dataset.groups == ["slide-0", "slide-1", "slide-0"]
    batch = next(iter(DataLoader(dataset, batch_size=3)))
    pairs = sum(g.edge_index.shape[1] // 2 for g in graphs)
    assert batch.num_graphs == 3 and batch.y.tolist() == [0, 1, 2]
    assert sorted(torch.unique(batch.edge_pair).tolist()) == list(range(pairs))
    assert torch.equal(torch.bincount(batch.edge_pair), torch.full((pairs,), 2))
    loaded = GraphDataset.load(dataset.save(tmp_path / "ds.pt"))
    assert len(loaded) == 3 and torch.equal(loaded[1].x, graphs[1].x) and loaded[2].group == "slide-0"
    assert len(loaded[1:]) == 2 and len(loaded[[0, 2]]) == 2


def test_empty_and_single_node_graphs_save_and_load(tmp_path):
    blank = graph_from_image(np.full((64, 64, 3), 255, np.uint8), 0.5, GraphConfig(kind="nuclei"))
    single = graph_from_image(np.full((12, 12, 3), 180, np.uint8), 0.5, GraphConfig(restrict_to_tissue=False))
    for graph, n in ((blank, 0), (single, 1)):
        loaded = load_graph(save_graph(graph, tmp_path / f"g{n}.pt"))
        validate_graph(loaded)
        assert loaded.num_nodes == n and loaded.edge_index.shape == (2, 0) and loaded.edge_attr.shape == (0, 3072)


def test_graph_config_round_trips_through_json():
    from hmgdm_core.entities import NucleiConfig, SuperpixelConfig
    from hmgdm_core.tissue import TissueConfig

    config = GraphConfig(
        kind="nuclei",
        window=16,
        superpixels=SuperpixelConfig(merge_threshold=0.05),
        nuclei=NucleiConfig(fixed_od=0.3),
        nuclei_topology="delaunay",
        tissue=TissueConfig(min_object_um2=50.0),
    )
    assert GraphConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
