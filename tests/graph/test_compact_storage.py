"""Graph records that hold their source image: exact windows on access, smaller than the windows, old files load."""

import csv

import numpy as np
import pytest
import torch

from hmgdm_core.errors import InputError
from hmgdm_core.graph import GraphConfig, GraphDataset, dataset_from_folder, dataset_from_region, graph_from_image
from hmgdm_core.graph.dataset import feature_moments
from hmgdm_core.graph.storage import graph_to_record, load_records, record_rows, record_to_graph
from hmgdm_core.graph.windows import unit_range
from hmgdm_core.io import Region, open_slide

KEYS = ("x", "edge_index", "edge_pair", "edge_attr", "pos", "entity_id", "node_meas", "edge_meas")


def record_bytes(record):
    return sum(v.numel() * v.element_size() for v in record.values() if isinstance(v, torch.Tensor))


def test_image_record_re_cuts_the_exact_windows_and_is_smaller(he_crop):
    graph = graph_from_image(he_crop, 0.25, GraphConfig(kind="nuclei"))
    windows = graph_to_record(graph)
    held = graph_to_record(graph, he_crop)
    assert "image" in held and held["x"].shape[0] < graph.num_nodes  # windows came from the image, not stored
    rebuilt = record_to_graph(held)
    for key in KEYS:
        assert torch.equal(rebuilt[key], graph[key]), key
    assert record_bytes(held) < record_bytes(windows)


def test_rows_that_would_re_cut_differently_are_kept_as_stored(he_crop):
    graph = graph_from_image(he_crop, 0.25, GraphConfig(kind="nuclei"))
    shifted = he_crop.copy()
    shifted[:, :, 0] = np.roll(he_crop[:, :, 0], 1, axis=0)  # another image: every window differs somewhere
    held = graph_to_record(graph, shifted)
    assert held["x"].shape[0] > 0 and held["pair_attr"].shape[0] > 0
    rebuilt = record_to_graph(held)
    assert torch.equal(rebuilt.x, graph.x) and torch.equal(rebuilt.edge_attr, graph.edge_attr)


def test_patches_of_a_slide_region_round_trip_exactly(sample_svs, tmp_path):
    with open_slide(sample_svs) as slide:
        region = slide.region(1200, 1000, 600, 900)  # level-0 offsets: pos is not the patch's own pixels
        image = slide.read(region)
    dataset = dataset_from_region(image, region, 300, GraphConfig(kind="nuclei"))
    loaded = GraphDataset.load(dataset.save(tmp_path / "patches.pt"))
    assert all("image" in r for r in loaded.records)
    for k, (y, x) in enumerate([(0, 0), (0, 300), (0, 600), (300, 0), (300, 300), (300, 600)]):
        patch = np.ascontiguousarray(image[y : y + 300, x : x + 300])
        sub = Region.from_dict(loaded[k].region)
        direct = graph_from_image(patch, float(region.mpp), GraphConfig(kind="nuclei"), sub)
        for key in KEYS:
            assert torch.equal(loaded[k][key], direct[key]), (k, key)


def test_kather_dataset_is_about_the_size_of_its_pngs(kather_dir, tmp_path):
    with (kather_dir / "index.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))[::150]
    (tmp_path / "index.csv").write_text(
        "path,class_index,slide\n"
        + "".join(f"{kather_dir / r['path']},{r['class_index']},{r['slide']}\n" for r in rows)
    )
    path = dataset_from_folder(tmp_path, 0.495, GraphConfig(kind="tissue")).save(tmp_path / "kather.pt")
    pngs = sum((kather_dir / r["path"]).stat().st_size for r in rows)
    assert path.stat().st_size <= 1.5 * pngs


def test_format_1_files_still_load_and_unknown_formats_are_refused(he_crop, tmp_path):
    graph = graph_from_image(he_crop, 0.25, GraphConfig(kind="nuclei"))
    torch.save({"format": "hmgdm-entity-graph/1", "graphs": [graph_to_record(graph)]}, tmp_path / "v1.pt")
    (loaded,) = GraphDataset.load(tmp_path / "v1.pt")
    assert torch.equal(loaded.x, graph.x) and torch.equal(loaded.edge_attr, graph.edge_attr)
    torch.save({"format": "hmgdm-entity-graph/9", "graphs": []}, tmp_path / "v9.pt")
    with pytest.raises(InputError, match="hmgdm-entity-graph/9.*rebuild it"):
        load_records(tmp_path / "v9.pt")


def held_and_shifted_datasets(he_crop):
    """A dataset of two image-held records: one re-cut from its image, one whose every row is kept as stored."""
    graph = graph_from_image(he_crop, 0.25, GraphConfig(kind="nuclei"))
    shifted = he_crop.copy()
    shifted[:, :, 0] = np.roll(he_crop[:, :, 0], 1, axis=0)
    return GraphDataset([graph_to_record(graph, he_crop), graph_to_record(graph, shifted)])


def test_stored_rows_are_the_windows_before_expansion(he_crop):
    dataset = held_and_shifted_datasets(he_crop)
    for index, record in enumerate(dataset.records):
        graph = dataset[index]
        rows = record_rows(record)
        assert rows["x"].dtype == torch.uint8 and rows["pair_attr"].dtype == torch.uint8
        assert torch.equal(unit_range(rows["x"]), graph.x)
        assert torch.equal(unit_range(rows["pair_attr"]), graph.edge_attr[: graph.num_edges // 2])
        first = record_rows(record, limit=1)
        assert torch.equal(first["x"], rows["x"][:1]) and torch.equal(first["pair_attr"], rows["pair_attr"][:1])
        x0, e0 = dataset.first_rows(index)
        assert torch.equal(x0, graph.x[:1]) and torch.equal(e0, graph.edge_attr[:1])
        assert dataset.counts(index) == (graph.num_nodes, graph.num_edges)


def test_feature_moments_of_stored_windows_are_those_of_the_expanded_graphs(he_crop, monkeypatch):
    dataset = held_and_shifted_datasets(he_crop)
    expanded = list(dataset)
    reference = feature_moments(expanded, expanded[0].x.shape[1])
    with monkeypatch.context() as patched:
        # From the stored uint8 rows: no graph (and no float copy of its windows) is made.
        patched.setattr("hmgdm_core.graph.dataset.record_to_graph", lambda record: pytest.fail("expanded"))
        stored = feature_moments(dataset, expanded[0].x.shape[1])
    assert stored["x"].count == reference["x"].count == sum(g.num_nodes for g in expanded)
    # One row per undirected pair against two per pair: the same mean and second moment.
    assert 2 * stored["edge_attr"].count == reference["edge_attr"].count
    for key, copies in (("x", 1), ("edge_attr", 2)):
        for name in ("total", "square"):
            ours, theirs = copies * getattr(stored[key], name), getattr(reference[key], name)
            assert torch.allclose(ours, theirs, rtol=1e-6, atol=1e-3), (key, name)


def mixed_records(he_crop):
    """Records of every kind one file may hold: image-held, windows only, latent floats, with and without a label."""
    graph = graph_from_image(he_crop, 0.25, GraphConfig(kind="nuclei"))
    labelled = graph.clone()
    labelled.y = torch.tensor([3])
    latent = graph.clone()
    latent.x, latent.edge_attr = latent.x / 3, latent.edge_attr / 3
    return [graph_to_record(graph, he_crop), graph_to_record(labelled), graph_to_record(latent)]


def same_records(ours, theirs):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert a.keys() == b.keys()
        for key, value in b.items():
            if isinstance(value, torch.Tensor):
                assert a[key].dtype == value.dtype and torch.equal(a[key], value), key
            else:
                assert a[key] == value, key


def test_a_dataset_file_holds_a_few_columns_not_a_dozen_tensors_per_graph(he_crop, tmp_path):
    records = mixed_records(he_crop) * 20
    path = GraphDataset(records).save(tmp_path / "mixed.pt")
    content = torch.load(path, weights_only=True)
    assert content["format"] == "hmgdm-entity-graph/3" and content["count"] == 60
    # One column per field and kind, however many graphs: torch.load reads dozens of tensors, not 700.
    assert len(content["columns"]) < 25
    assert {"x/uint8/2", "x/float32/2", "y/int64/1", "image/uint8/1"} <= set(content["columns"])
    same_records(load_records(path), records)
    loaded = GraphDataset.load(path)
    for index in range(3):
        for key in KEYS:
            assert torch.equal(loaded[index][key], record_to_graph(records[index])[key]), key
    assert loaded.labels.tolist()[:3] == [-1, 3, -1]


def test_format_2_files_still_load_and_damaged_columns_are_refused(he_crop, tmp_path):
    records = mixed_records(he_crop)
    torch.save({"format": "hmgdm-entity-graph/2", "graphs": records}, tmp_path / "v2.pt")
    same_records(load_records(tmp_path / "v2.pt"), records)
    content = torch.load(GraphDataset(records).save(tmp_path / "v3.pt"), weights_only=True)
    content["columns"]["pos/float32/2"] = content["columns"]["pos/float32/2"][:-1]  # a value short
    torch.save(content, tmp_path / "damaged.pt")
    with pytest.raises(InputError, match="damaged entity-graph file"):
        load_records(tmp_path / "damaged.pt")
