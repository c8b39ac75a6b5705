"""Exporting entities, patch predictions and graphs as QuPath GeoJSON, and the tiatoolbox graph JSON."""

import json
import math
import uuid

import numpy as np
import pytest
import torch

from hmgdm_core.io import Region, open_slide
from hmgdm_core.io.qupath import (
    edge_feature,
    entity_features,
    entity_outlines,
    graph_features,
    patch_features,
    read_qupath,
    write_graph_qupath,
    write_qupath,
)
from hmgdm_core.io.tiatoolbox_json import write_graph_tiatoolbox


@pytest.fixture(scope="module")
def slide_nuclei(sample_svs):
    from hmgdm_core.entities import nuclei_entities

    slide = open_slide(sample_svs)
    region = Region(1200, 900, 384, 448, base_mpp=slide.mpp)
    rgb = slide.read(region)
    return region, rgb, nuclei_entities(rgb, float(region.mpp)), slide.shape


def _check_qupath_structure(content):
    """QuPath's documented structure (ecosystem.md §2.11), strict JSON only."""
    assert content["type"] == "FeatureCollection"
    for feature in content["features"]:
        assert feature["type"] == "Feature"
        uuid.UUID(feature["id"])
        assert feature["geometry"]["type"] in {"Point", "MultiLineString", "Polygon"}
        props = feature["properties"]
        assert props["objectType"] in {"annotation", "detection", "cell", "tile"}
        if "classification" in props:
            assert isinstance(props["classification"]["name"], str)
        for value in props.get("measurements", {}).values():
            assert isinstance(value, float | int) or value in ("NaN", "Infinity", "-Infinity")
        if feature["geometry"]["type"] == "Polygon":
            ring = feature["geometry"]["coordinates"][0]
            assert ring[0] == ring[-1] and len(ring) >= 4


def test_nuclei_from_the_bundled_slide_round_trip_unchanged(slide_nuclei, tmp_path):
    region, _, ents, slide_shape = slide_nuclei
    assert ents.n > 20
    outlines = entity_outlines(ents.labels, region)
    classes = ["Large" if a > 30 else "Small" for a in ents.table["area_um2"]]
    features = entity_features(
        outlines,
        measurements={"Area µm^2": ents.table["area_um2"], "OD H": ents.table["od_h"]},
        classes=classes,
        colors={"Large": (255, 0, 0), "Small": (0, 0, 255)},
    )
    path = write_qupath(features, tmp_path / "nuclei.geojson")
    text = path.read_text(encoding="utf-8")
    content = json.loads(text, parse_constant=lambda token: pytest.fail(f"bare {token} in the file"))
    _check_qupath_structure(content)
    back = read_qupath(path, image_shape=slide_shape)
    assert len(back) == ents.n
    for obj, feature, cls in zip(back, features, classes, strict=True):
        assert obj.id == feature["id"] and obj.object_type == "detection"
        assert obj.geometry == feature["geometry"]
        assert obj.classification == cls and obj.color == ((255, 0, 0) if cls == "Large" else (0, 0, 255))
        assert obj.measurements == feature["properties"]["measurements"]
    # Outlines are level-0 (x, y): every one lies in the region's box.
    xy = np.concatenate([np.asarray(o.geometry["coordinates"][0]) for o in back])
    assert xy[:, 0].min() >= region.x - 0.5 and xy[:, 0].max() <= region.x + region.width
    assert xy[:, 1].min() >= region.y - 0.5 and xy[:, 1].max() <= region.y + region.height


def test_reimported_outlines_rebuild_the_label_image(slide_nuclei, tmp_path):
    from hmgdm_core.entities import nuclei_from_geojson

    region, rgb, ents, _ = slide_nuclei
    path = write_qupath(entity_features(entity_outlines(ents.labels, region)), tmp_path / "n.geojson")
    again = nuclei_from_geojson(path, rgb, region)
    assert again.n == ents.n
    agree = (again.labels > 0) == (ents.labels > 0)
    assert agree.mean() > 0.99
    assert np.allclose(np.sort(again.table["area_px"]), np.sort(ents.table["area_px"]), rtol=0.2, atol=3)


def test_downsampled_region_outlines_map_to_level0():
    labels = np.zeros((50, 60), np.int32)
    labels[10:20, 30:40] = 1
    region = Region(1000, 2000, 100, 120, base_mpp=0.25, mpp=0.5)
    ring = entity_outlines(labels, region)[0]
    assert np.allclose(ring[0], ring[-1])
    assert ring[:, 0].min() == pytest.approx(2000 + 2 * 30 - 0.5, abs=1.1)  # x: columns 30..39 at 2x
    assert ring[:, 1].max() == pytest.approx(1000 + 2 * 20 - 0.5, abs=1.1)  # y: rows 10..19 at 2x
    assert entity_outlines(np.where(labels == 1, 2, 0), region)[0] is None  # absent label 1


def test_cells_and_patch_predictions(tmp_path):
    square = np.array([[0, 0], [8, 0], [8, 8], [0, 8], [0, 0]], float)
    cells = entity_features([square + 10], object_type="cell", nucleus_outlines=[square / 2 + 12])
    probabilities = np.array([[0.1, 0.9], [0.7, 0.3]])
    boxes = np.array([[0, 0, 224, 224], [0, 224, 224, 448]])
    embeddings = np.array([[3.0, 4.0], [np.nan, 1.0]])
    patches = patch_features(
        boxes, ["Tumour", "Stroma"], probabilities, embeddings=embeddings, colors={"Tumour": (200, 0, 0)}
    )
    path = write_qupath(cells + patches, tmp_path / "mixed.geojson")
    _check_qupath_structure(json.loads(path.read_text(encoding="utf-8")))
    cell, first, second = read_qupath(path)
    assert cell.object_type == "cell" and cell.nucleus_geometry["coordinates"][0][0] == [12.0, 12.0]
    assert (first.object_type, first.classification, first.color) == ("tile", "Stroma", None)
    assert (second.classification, second.color) == ("Tumour", (200, 0, 0))
    assert first.measurements["Probability: Stroma"] == 0.9
    assert first.measurements["Embedding: L2 norm"] == 5.0
    assert math.isnan(second.measurements["Embedding: mean"])  # written as "NaN", read back as NaN
    assert first.geometry["coordinates"][0][:3] == [[0.0, 0.0], [224.0, 0.0], [224.0, 224.0]]  # (x, y)


def _graph():
    from hmgdm_core.graph import EntityGraph

    pairs = torch.tensor([[0, 1], [1, 2]])
    return EntityGraph(
        pos=torch.tensor([[10.0, 20.0], [30.0, 40.0], [50.0, 60.0]]),  # (y, x)
        edge_index=torch.cat([pairs.T, pairs.flip(1).T], dim=1),
        entity_id=torch.tensor([4, 5, 6]),
        node_meas=torch.tensor([[1.0, float("inf")], [2.0, 0.5], [3.0, float("nan")]]),
        node_meas_names=["area_um2", "od_h"],
        kind="nuclei",
    )


def test_graph_as_qupath_points_and_one_locked_edge_annotation(tmp_path):
    graph = _graph()
    path = write_graph_qupath(graph, tmp_path / "graph.geojson")
    _check_qupath_structure(json.loads(path.read_text(encoding="utf-8")))
    *nodes, edges = read_qupath(path, image_shape=(100, 100))
    assert [n.geometry["coordinates"] for n in nodes] == [[20.0, 10.0], [40.0, 30.0], [60.0, 50.0]]
    assert [n.name for n in nodes] == ["4", "5", "6"]
    assert nodes[0].measurements["od_h"] == math.inf and math.isnan(nodes[2].measurements["od_h"])
    assert edges.locked and edges.object_type == "annotation"
    assert edges.geometry == {
        "type": "MultiLineString",
        "coordinates": [[[20.0, 10.0], [40.0, 30.0]], [[40.0, 30.0], [60.0, 50.0]]],
    }
    assert len(graph_features(graph)) == 4


def test_graph_as_tiatoolbox_json(tmp_path):
    content = json.loads(write_graph_tiatoolbox(_graph(), tmp_path / "g.json").read_text())
    assert content["coordinates"] == [[20.0, 10.0], [40.0, 30.0], [60.0, 50.0]]
    assert content["edge_index"] == [[0, 1, 1, 2], [1, 2, 0, 1]]
    assert content["feats"] == [[1.0, None], [2.0, 0.5], [3.0, None]]
    assert content["feat_names"] == ["area_um2", "od_h"]


def test_edge_feature_of_an_edgeless_graph_is_empty():
    feature = edge_feature(np.zeros((1, 2)), np.zeros((0, 2), int))
    assert feature["geometry"]["coordinates"] == [] and feature["properties"]["isLocked"] is True


def test_outlines_enclose_exactly_their_entity_pixels():
    from skimage.draw import polygon

    labels = np.zeros((40, 50), np.int32)
    yy, xx = np.mgrid[:40, :50]
    labels[(yy - 12) ** 2 + (xx - 12) ** 2 <= 49] = 1  # a disc
    labels[2:20, 25:30] = 2  # an L shape
    labels[15:20, 25:45] = 2
    labels[25:38, 5:20] = 3  # a square with a hole: the outline is the outer ring
    labels[29:33, 9:13] = 0
    labels[25:38, 20:24] = 4  # touching entity 3 along an edge
    labels[0:3, 44:50] = 5  # on the image border
    region = Region(0, 0, 40, 50, base_mpp=0.5)
    rings = entity_outlines(labels, region)
    assert len(rings) == 5
    for label, ring in enumerate(rings, start=1):
        assert np.array_equal(ring[0], ring[-1])
        inside = np.zeros(labels.shape, bool)
        inside[polygon(ring[:, 1], ring[:, 0], shape=labels.shape)] = True
        expected = labels == label
        if label == 3:
            expected[29:33, 9:13] = True  # holes are not part of the outline
        assert np.array_equal(inside, expected), label
    assert len(rings[3]) == 5  # a rectangle: 4 corners + closing point, no collinear points
