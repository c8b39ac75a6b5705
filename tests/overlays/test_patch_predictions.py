import csv

import numpy as np
import pytest
import tifffile
import torch

from hmgdm_core.downstream import GraphClassifier, predict_graphs
from hmgdm_core.errors import InputError
from hmgdm_core.graph import GraphConfig, dataset_from_region
from hmgdm_core.io import Region, open_slide
from hmgdm_core.overlays import (
    PatchGrid,
    class_map,
    cluster_patches,
    entity_points,
    fit_patch_probe,
    save_predictions,
)


@pytest.fixture(scope="module")
def patches(sample_svs):
    """Colour-histogram embeddings of 32² patches of the bundled slide (tissue and background), and brightness."""
    with open_slide(sample_svs) as slide:
        region = Region(0, 0, 2048, 2048, slide.mpp, 8 * slide.mpp)
        image = slide.read(region)
    grid = PatchGrid(region, 32)
    cut = grid.cut(image)
    embeddings = np.stack(
        [np.concatenate([np.histogram(p[..., c], bins=8, range=(0, 256))[0] for c in range(3)]) for p in cut]
    ).astype(np.float64)
    brightness = np.array([p.mean() for p in cut])
    return grid, embeddings, brightness


def test_kmeans_clusters_follow_the_patch_content_and_are_seeded(patches):
    grid, embeddings, brightness = patches
    labels = cluster_patches(embeddings, 2, seed=0)
    assert labels.shape == (len(grid),) and set(labels.tolist()) == {0, 1}
    assert np.array_equal(labels, cluster_patches(embeddings, 2, seed=0))
    means = [brightness[labels == k].mean() for k in (0, 1)]
    assert abs(means[0] - means[1]) > 20  # glass and tissue fall apart
    with pytest.raises(InputError, match="k"):
        cluster_patches(embeddings, len(embeddings) + 1)


def test_a_probe_on_a_few_marked_patches_maps_the_region(patches):
    grid, embeddings, brightness = patches
    order = np.argsort(brightness)
    marked = np.concatenate([order[-3:], order[:3]])  # three bright (class 0), three dark (class 1); class 2 unmarked
    probe = fit_patch_probe(embeddings, marked, [0, 0, 0, 1, 1, 1], num_classes=3)
    proba = probe.predict_proba(embeddings)
    assert proba.shape == (len(grid), 3) and np.allclose(proba.sum(1), 1) and np.all(proba[:, 2] == 0)
    assert np.array_equal(proba[marked].argmax(1), [0, 0, 0, 1, 1, 1])
    assert np.corrcoef(proba[:, 0], brightness)[0, 1] > 0.5
    classes, heat = class_map(grid, proba, heatmap_class=1)
    raster = grid.label_raster()
    assert np.array_equal(classes[raster >= 0], proba.argmax(1)[raster[raster >= 0]])
    assert np.allclose(heat[raster >= 0], proba[raster[raster >= 0], 1])
    with pytest.raises(InputError, match="two classes"):
        fit_patch_probe(embeddings, marked[:3], [0, 0, 0], num_classes=3)


def test_class_map_on_fixed_probabilities_leaves_uncovered_pixels_empty():
    grid = PatchGrid(Region(0, 0, 70, 90, 0.5), 32)  # 2 × 2 patches, a 6-pixel and 26-pixel uncovered margin
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    classes, confidence = class_map(grid, proba)
    assert np.all(classes[:32, :32] == 0) and np.all(classes[:32, 32:64] == 1) and np.all(classes[32:64, 32:64] == 1)
    assert np.allclose(confidence[32:64, :32], 0.6) and np.allclose(confidence[:32, 32:64], 0.8)
    assert np.all(classes[64:] == -1) and np.all(classes[:, 64:] == -1) and np.all(np.isnan(confidence[64:]))
    coarse, _ = class_map(grid, proba, downsample=8)
    assert coarse.shape == (9, 12) and np.array_equal(coarse[:8, :8], classes[4:64:8, 4:64:8])
    with pytest.raises(InputError, match="probabilities"):
        class_map(grid, proba[:3])


def test_saved_heatmap_and_table_hold_the_predictions(tmp_path):
    region = Region(100, 200, 1200, 1000, 0.25, 0.5)  # read size 600 × 500: a pyramid of 3 levels
    grid = PatchGrid(region, 100, keep_partial=True)
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(3), size=len(grid))
    names = ["tumour", "stroma", "other"]
    tiff, table = save_predictions(tmp_path / "heat.ome.tif", tmp_path / "patches.csv", grid, proba, names, 2)
    _, heat = class_map(grid, proba, 2)
    with tifffile.TiffFile(tiff) as tif:
        assert tif.is_ome and len(tif.series[0].levels) >= 2
        assert np.allclose(tif.series[0].asarray(), heat)
        assert 'PhysicalSizeX="0.5"' in tif.ome_metadata
    with table.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(grid)
    for row, (y0, x0, y1, x1), p in zip(rows, grid.level0_boxes, proba, strict=True):
        assert (int(row["x"]), int(row["y"]), int(row["width"]), int(row["height"])) == (x0, y0, x1 - x0, y1 - y0)
        assert int(row["class"]) == p.argmax() and row["class_name"] == names[p.argmax()]
        assert np.allclose([float(row[f"p_{n}"]) for n in names], p, rtol=1e-5)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary file


class _MeanColour(torch.nn.Module):
    """Stand-in encoder: node vector = linear map of the window's mean colour."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3, 8)

    def forward(self, batch):
        colour = batch.x.reshape(batch.num_nodes, 3, -1).mean(-1)
        return self.linear(colour), batch.batch


def test_entity_points_gather_the_classifier_s_attention_per_node(sample_svs):
    with open_slide(sample_svs) as slide:
        region = Region(1200, 900, 320, 320, slide.mpp, 2 * slide.mpp)
        dataset = dataset_from_region(slide.read(region), region, 80, GraphConfig(window=8))
    graphs = [dataset[i] for i in range(len(dataset))]
    torch.manual_seed(0)
    predictions = predict_graphs(GraphClassifier(_MeanColour(), 8, 3, hidden_channels=16), graphs)
    points = entity_points(graphs, predictions.attention)
    sizes = [g.num_nodes for g in graphs]
    assert points.pos.shape == (sum(sizes), 2) and np.array_equal(np.bincount(points.patch), sizes)
    assert np.allclose(points.pos, np.concatenate([g.pos.numpy() for g in graphs]))
    # Nodes lie in their patch's level-0 box.
    boxes = PatchGrid(region, 80).level0_boxes[points.patch]
    assert np.all((points.pos >= boxes[:, :2] - 0.5) & (points.pos <= boxes[:, 2:] - 0.5))
    assert np.allclose(np.bincount(points.patch, weights=points.value), 1, atol=1e-5)  # attention sums to 1
    relative = entity_points(graphs, predictions.attention, relative=True)
    assert np.allclose(np.bincount(relative.patch, weights=relative.value), sizes, rtol=1e-5)
    with pytest.raises(InputError, match="value arrays"):
        entity_points(graphs, predictions.attention[:-1])
