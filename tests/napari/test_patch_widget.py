"""Patch predictions in a real viewer: embed, clusters, a few-click classifier, saved outputs."""

import csv

import numpy as np
import tifffile
from napari.layers import Image, Labels, Points
from napari.utils.colormaps import AVAILABLE_COLORMAPS
from qtpy.QtCore import Qt

from hmgdm_core.downstream import pooled_measurements
from hmgdm_core.embed import DEFAULT_READOUT, patch_width
from hmgdm_core.train import load_checkpoint
from napari_hmgdm._widgets.patch_widget import ATTENTION, MARKS, PatchWidget


def docked_widget(slide_viewer, checkpoint) -> PatchWidget:
    """The widget docked on the viewer with the slide, the drawn region, the checkpoint and 64-px patches."""
    viewer, image, shapes = slide_viewer
    widget = PatchWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.picker.image.value = image
    widget.picker.shapes.value = shapes
    widget.checkpoint.value = str(checkpoint)
    widget.patch_size.value = 64
    return widget


def test_clusters_and_few_click_classifier(qtbot, slide_viewer, roi_box, checkpoint, tmp_path):
    viewer, image, _ = slide_viewer
    _, mpp = roi_box
    widget = docked_widget(slide_viewer, checkpoint)
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

    _check_cluster_colours(viewer, clusters, grid)

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

    _check_attention(qtbot, widget, image)


def test_patch_vector_choice_adds_or_keeps_only_the_pooled_measurements(qtbot, slide_viewer, checkpoint):
    viewer = slide_viewer[0]
    widget = docked_widget(slide_viewer, checkpoint)
    width = patch_width(DEFAULT_READOUT, load_checkpoint(checkpoint).config.model.hidden_dim)
    assert widget.vector.value == "embedding" and widget.vector_parts() == ((), True)

    def choose_next_and_embed():
        # As a person picks from the drop-down with the keyboard, then presses the button.
        qtbot.keyClick(widget.vector.native, Qt.Key_Down)
        widget.result = None
        widget.embed_button.native.click()
        qtbot.waitUntil(lambda: widget.result is not None and widget._worker is None, timeout=120_000)
        return widget.result

    result = choose_next_and_embed()
    assert widget.vector.value == "embedding + measurements" and widget.vector_parts() == (("tissue",), True)
    measured = pooled_measurements(result.graphs)
    assert result.measurement_columns == measured.shape[1] > 0
    assert result.embeddings.shape == (len(result.grid), width + measured.shape[1])
    np.testing.assert_array_equal(result.embeddings[:, width:], measured)
    assert f"the last {measured.shape[1]} pooled measurements" in widget.status.value
    widget.clusters.value = 3
    widget.cluster_button.native.click()
    assert len(np.unique(viewer.layers["patch clusters"].data)) >= 3  # background 0 and at least two clusters

    both = choose_next_and_embed()
    assert widget.vector_parts() == (("tissue", "nuclei"), True)
    # The tissue columns are the same; the nuclei graphs' 14 pooled measurements follow (their values are checked
    # against graphs built apart in test_workers).
    assert both.measurement_columns == measured.shape[1] + 14
    np.testing.assert_array_equal(both.embeddings[:, : width + measured.shape[1]], result.embeddings)
    assert np.isfinite(both.embeddings).all()

    alone = choose_next_and_embed()
    assert widget.vector.value == "tissue & nuclei measurements"
    assert widget.vector_parts() == (("tissue", "nuclei"), False)
    np.testing.assert_array_equal(alone.embeddings, both.embeddings[:, width:])
    assert alone.measurement_columns == alone.embeddings.shape[1] == measured.shape[1] + 14
    assert "(30 pooled measurements each)" in widget.status.value
    widget.cluster_button.native.click()
    assert len(np.unique(viewer.layers["patch clusters"].data)) >= 3


def test_clusters_before_embedding_is_a_clear_message(slide_viewer):
    viewer, _, _ = slide_viewer
    widget = PatchWidget(viewer)
    widget.cluster_button.native.click()
    assert "Embed the patches first" in widget.status.value


def _check_attention(qtbot, widget, image):
    """Fine-tune on the marks in a worker; the entity attention layer sits on the entities, in inferno."""
    viewer = widget._viewer
    widget.epochs.value = 3
    widget.finetune_button.native.click()
    assert widget.finetune_button.text == "Cancel fine-tuning"
    qtbot.waitUntil(lambda: widget.attention is not None and widget._finetune_worker is None, timeout=120_000)
    result, graphs = widget.attention, widget.result.graphs
    assert result.epochs == 3 and widget.progress.value == 3
    assert result.probabilities.shape == (9, 3) and np.allclose(result.probabilities.sum(axis=1), 1.0, atol=1e-5)
    for graph, attention in zip(graphs, result.attention, strict=True):
        assert attention.shape == (graph.num_nodes,) and np.isclose(attention.sum(), 1.0, atol=1e-5)
    points = viewer.layers[ATTENTION]
    classes = viewer.layers["fine-tuned classes"]
    assert isinstance(points, Points) and isinstance(classes, Labels)
    assert len(points.data) == sum(g.num_nodes for g in graphs)
    np.testing.assert_allclose(points.features["attention"], np.concatenate(
        [a * len(a) for a in result.attention]), rtol=1e-5)
    # Aligned: each point lands on its entity's level-0 position on the slide, inside its own patch's class.
    level0 = np.array([image.world_to_data(points.data_to_world(p))[-2:] for p in points.data])
    np.testing.assert_allclose(level0, np.concatenate([g.pos.numpy() for g in graphs]), atol=1e-3)
    for p, patch in zip(points.data[::7], points.features["patch"][::7], strict=True):
        expected = result.probabilities[patch].argmax() + 1
        row, col = np.round(classes.world_to_data(points.data_to_world(p))).astype(int)
        assert classes.data[row, col] == expected
    # On screen: the heatmap's colours come from inferno and vary with the attention.
    for layer in viewer.layers:
        layer.visible = layer is points
    grid = widget.result.grid
    y0, x0, y1, x1 = np.array(grid.level0_boxes).T
    viewer.scene.camera.center = ((y0.min() + y1.max()) / 2 * 0.499, (x0.min() + x1.max()) / 2 * 0.499)
    viewer.scene.camera.zoom = 3.0
    shot = viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(float)
    painted = shot[shot.sum(axis=-1) > 60]
    assert len(painted) > 500
    lut = AVAILABLE_COLORMAPS["inferno"].map(np.linspace(0, 1, 256))[:, :3] * 255
    distance = np.sqrt(((painted[::10, None, :] - lut[None]) ** 2).sum(-1)).min(axis=1)
    assert np.median(distance) < 20
    assert len(np.unique((painted // 32).astype(int), axis=0)) >= 4


def _check_cluster_colours(viewer, clusters, grid):
    """On screen, the middle of each patch shows its cluster's label colour."""
    visible = {layer.name: layer.visible for layer in viewer.layers}
    for layer in viewer.layers:
        layer.visible = layer is clusters
    clusters.opacity = 1.0
    viewer.scene.camera.zoom = 4.0
    for index in (0, 4, 8):
        r0, c0, r1, c1 = grid.boxes[index]
        centre = ((r0 + r1 - 1) / 2, (c0 + c1 - 1) / 2)
        viewer.scene.camera.center = tuple(clusters.data_to_world(centre))
        shot = viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(int)
        h, w = shot.shape[:2]
        seen = shot[h // 2 - 2 : h // 2 + 3, w // 2 - 2 : w // 2 + 3].reshape(-1, 3)
        expected = np.asarray(clusters.get_color(clusters.data[int(centre[0]), int(centre[1])]))[:3] * 255
        assert np.abs(seen - expected).max() <= 25, (index, seen[0], expected)
    for layer in viewer.layers:
        layer.visible = visible[layer.name]
    clusters.opacity = 0.5


def test_class_names_survive_layer_changes(slide_viewer):
    viewer, _, _ = slide_viewer
    widget = PatchWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.class_names.value = "cell-dense, pale"
    widget.mark_class.value = "pale"
    viewer.add_points(np.zeros((1, 2)))  # napari resets the dock's choices on every layer change
    assert widget.mark_class.choices == ("cell-dense", "pale") and widget.mark_class.value == "pale"
    assert widget.heatmap_class.choices == ("cell-dense", "pale")
