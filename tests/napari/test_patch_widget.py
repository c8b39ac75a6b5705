"""Patch predictions in a real viewer: embed, clusters, a few-click classifier, saved outputs."""

import csv

import numpy as np
import tifffile
from napari.layers import Image, Labels

from napari_hmgdm._widgets.patch_widget import MARKS, PatchWidget


def test_clusters_and_few_click_classifier(qtbot, slide_viewer, roi_box, checkpoint, tmp_path):
    viewer, image, shapes = slide_viewer
    _, mpp = roi_box
    widget = PatchWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.picker.image.value = image
    widget.picker.shapes.value = shapes
    widget.checkpoint.value = str(checkpoint)
    widget.patch_size.value = 64
    widget.embed_button.native.click()
    qtbot.waitUntil(lambda: widget.result is not None and widget._worker is None, timeout=120_000)
    grid = widget.result.grid
    assert widget.result.embeddings.shape[0] == len(grid) == 9  # 512² level-0 px = 255² px at 1 µm/px: 3 x 3 patches

    widget.clusters.value = 3
    widget.cluster_button.native.click()
    clusters = viewer.layers["patch clusters"]
    assert isinstance(clusters, Labels)
    assert set(np.unique(clusters.data)) <= {0, 1, 2, 3} and len(np.unique(clusters.data)) >= 2
    # The cluster layer sits on its patches: the centre of patch 0 reads back patch 0's cluster.
    y0, x0, y1, x1 = grid.level0_boxes[0]
    centre_world = np.array([(y0 + y1) / 2, (x0 + x1) / 2]) * mpp
    assert clusters.get_value(centre_world, world=True) == clusters.data[grid.boxes[0][0] + 5, grid.boxes[0][1] + 5]

    points = viewer.layers["patch embeddings"]
    assert len(points.data) == 9 and "cluster" in points.features and "embedding_0" in points.features

    marks = viewer.layers[MARKS]
    for index, name in [(0, "tumour"), (4, "stroma"), (6, "tumour"), (8, "stroma")]:
        by0, bx0, by1, bx1 = grid.level0_boxes[index]
        widget.mark_class.value = name
        marks.add(np.array([(by0 + by1) / 2, (bx0 + bx1) / 2]) * mpp)
    patches, classes = widget.marked_patches()
    assert patches.tolist() == [0, 4, 6, 8] and classes.tolist() == [0, 1, 0, 1]
    widget.probe_button.native.click()
    classes_layer = viewer.layers["patch classes"]
    heat = viewer.layers["p(tumour)"]
    assert isinstance(classes_layer, Labels) and isinstance(heat, Image)
    assert set(np.unique(classes_layer.data)) <= {0, 1, 2, 3}
    assert heat.data.min() >= 0.0 and heat.data.max() <= 1.0
    np.testing.assert_allclose(widget.probabilities.sum(axis=1), 1.0, atol=1e-6)
    # A new mark retrains the classifier at once.
    before = widget.probabilities.copy()
    widget.mark_class.value = "other"
    by0, bx0, by1, bx1 = grid.level0_boxes[2]
    marks.add(np.array([(by0 + by1) / 2, (bx0 + bx1) / 2]) * mpp)
    assert widget.probabilities.shape == before.shape and widget.probabilities[:, 2].max() > 0

    tiff, table = widget.save(tmp_path / "pred.ome.tif", tmp_path / "pred.csv")
    assert tifffile.TiffFile(tiff).is_ome
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 9 and {"class_name", "p_tumour", "p_stroma"} <= set(rows[0])


def test_clusters_before_embedding_is_a_clear_message(slide_viewer):
    viewer, _, _ = slide_viewer
    widget = PatchWidget(viewer)
    widget.cluster_button.native.click()
    assert "Embed the patches first" in widget.status.value
