import numpy as np
import pytest
import torch

from hmgdm_core.entities import nuclei_entities, tissue_entities
from hmgdm_core.errors import InputError
from hmgdm_core.graph import GraphConfig, graph_from_entities, graph_from_image, validate_graph
from hmgdm_core.io import Region

MPP = 0.25
CONFIGS = [
    GraphConfig(kind="tissue"),
    GraphConfig(kind="nuclei"),
    GraphConfig(kind="nuclei", nuclei_topology="delaunay"),
]


@pytest.fixture(scope="module", params=CONFIGS, ids=["tissue", "nuclei-knn", "nuclei-delaunay"])
def built(request, he_crop):
    return request.param, graph_from_image(he_crop, MPP, request.param)


def test_graph_follows_the_contract(built):
    config, graph = built
    validate_graph(graph)
    assert graph.kind == config.kind and graph.num_nodes > 10 and graph.num_edges > 10
    assert graph.x.shape[1] == 3 * config.window**2 == 3072


def test_edges_are_symmetric_pair_ids_consistent_and_loop_free(built):
    _, graph = built
    ei, pair = graph.edge_index, graph.edge_pair
    assert not bool((ei[0] == ei[1]).any())
    forward = set(map(tuple, ei.T.tolist()))
    assert forward == {(b, a) for a, b in forward}
    for p in range(0, int(pair.max()) + 1, 7):
        (cols,) = torch.nonzero(pair == p, as_tuple=True)
        assert len(cols) == 2 and ei[0, cols[0]] == ei[1, cols[1]] and ei[1, cols[0]] == ei[0, cols[1]]
        assert torch.equal(graph.edge_attr[cols[0]], graph.edge_attr[cols[1]])


def test_node_points_lie_inside_their_entities(he_crop):
    for config in CONFIGS[:2]:
        ents = (tissue_entities if config.kind == "tissue" else nuclei_entities)(he_crop, MPP)
        region = Region(0, 0, *he_crop.shape[:2], MPP)
        graph = graph_from_entities(ents, he_crop, region, config)
        yx = np.rint(graph.pos.numpy()).astype(int)
        assert np.array_equal(ents.labels[yx[:, 0], yx[:, 1]], graph.entity_id.numpy())


def test_tissue_edges_join_touching_superpixels_with_their_boundary(he_crop):
    graph = graph_from_image(he_crop, MPP, GraphConfig(kind="tissue"))
    column = graph.edge_meas_names.index("boundary_um")
    assert (graph.edge_meas[:, column] > 0).all()


def test_nuclei_edges_respect_k_and_the_maximum_distance(he_crop):
    config = GraphConfig(kind="nuclei", k=3, max_distance_um=8.0)
    graph = graph_from_image(he_crop, MPP, config)
    dist = graph.edge_meas[:, graph.edge_meas_names.index("distance_um")]
    assert float(dist.max()) <= 8.0 + 1e-4
    assert torch.allclose(
        dist, (graph.pos[graph.edge_index[0]] - graph.pos[graph.edge_index[1]]).norm(dim=1) * MPP, atol=1e-3
    )


def test_building_is_deterministic(he_crop):
    for config in CONFIGS[:2]:
        a, b = graph_from_image(he_crop, MPP, config), graph_from_image(he_crop, MPP, config)
        for key in ("x", "edge_index", "edge_pair", "edge_attr", "pos", "node_meas", "edge_meas"):
            assert torch.equal(a[key], b[key])


def test_positions_are_level0_pixels_of_the_slide(he_crop):
    region = Region(1000, 2000, 2 * he_crop.shape[0], 2 * he_crop.shape[1], base_mpp=0.125, mpp=MPP)
    graph = graph_from_image(he_crop, MPP, GraphConfig(kind="nuclei"), region)
    local = graph_from_image(he_crop, MPP, GraphConfig(kind="nuclei"))
    assert torch.allclose(graph.pos, torch.from_numpy(region.to_level0(local.pos.numpy())).float())
    assert graph.region == region.to_dict()


def test_window_size_is_configurable(he_crop):
    graph = graph_from_image(he_crop, MPP, GraphConfig(kind="nuclei", window=16))
    validate_graph(graph)
    assert graph.x.shape[1] == graph.edge_attr.shape[1] == 768


@pytest.mark.parametrize("value", [0, 255])
def test_blank_patches_give_well_defined_graphs(value):
    blank = np.full((150, 150, 3), value, np.uint8)
    nuclei = graph_from_image(blank, 0.5, GraphConfig(kind="nuclei"))
    validate_graph(nuclei)
    assert nuclei.num_nodes == 0 and nuclei.edge_index.shape == (2, 0) and nuclei.x.shape == (0, 3072)
    tissue = graph_from_image(blank, 0.5, GraphConfig(kind="tissue"))
    validate_graph(tissue)
    assert tissue.num_nodes == 0  # no tissue under the mask
    everything = graph_from_image(blank, 0.5, GraphConfig(kind="tissue", restrict_to_tissue=False))
    validate_graph(everything)
    assert everything.num_nodes >= 1


def test_a_single_entity_gives_an_edgeless_graph():
    tiny = np.full((12, 12, 3), (200, 120, 180), np.uint8)
    graph = graph_from_image(tiny, 0.25, GraphConfig(kind="tissue", restrict_to_tissue=False))
    validate_graph(graph)
    assert graph.num_nodes == 1 and graph.edge_index.shape == (2, 0) and graph.edge_attr.shape == (0, 3072)


def test_bad_input_is_refused(he_crop):
    with pytest.raises(InputError, match="uint8 RGB"):
        graph_from_image(he_crop[..., 0], MPP)
    with pytest.raises(InputError, match="mpp"):
        graph_from_image(he_crop, -1.0)
    with pytest.raises(InputError, match="kind"):
        GraphConfig(kind="cells")
    with pytest.raises(InputError, match="region"):
        graph_from_image(he_crop, MPP, region=Region(0, 0, 10, 10, MPP))


def test_entities_cut_by_the_image_border_are_kept_with_reflected_windows():
    from skimage.draw import disk

    rgb = np.full((120, 120, 3), (235, 215, 230), np.uint8)  # pale eosin background
    for centre in ((60, 60), (60, 2), (2, 100)):  # one whole nucleus, two cut by the border
        rr, cc = disk(centre, 14, shape=rgb.shape[:2])
        rgb[rr, cc] = (80, 50, 140)
    graph = graph_from_image(rgb, 0.25, GraphConfig(kind="nuclei", max_distance_um=20.0))
    validate_graph(graph)
    assert graph.num_nodes == 3
    pos = graph.pos.numpy()
    assert (pos >= 0).all() and (pos < 120).all()
    mean_r = graph.node_meas[:, graph.node_meas_names.index("mean_r")]
    assert torch.allclose(mean_r, torch.full((3,), 80.0), atol=10)  # measured on their own pixels
    windows = graph.x.reshape(3, 3, 32, 32)
    centre_red = (windows[:, 0, 16, 16] + 1) * 127.5
    assert torch.allclose(centre_red, torch.full((3,), 80.0), atol=1)  # each window is centred on its nucleus
