import numpy as np
import pytest

from hmgdm_core.entities import as_rgb, measure_entities, relabel_sequential, stain_od
from hmgdm_core.errors import InputError


def test_stain_od_is_zero_on_white_and_separates_haematoxylin_from_eosin():
    white = np.full((2, 2, 3), 255, np.uint8)
    assert np.allclose(stain_od(white, 0), 0, atol=1e-6)
    purple = np.full((1, 1, 3), (90, 60, 150), np.uint8)  # haematoxylin-like
    pink = np.full((1, 1, 3), (230, 120, 190), np.uint8)  # eosin-like
    assert stain_od(purple, 0)[0, 0] > stain_od(pink, 0)[0, 0]
    assert stain_od(pink, 1)[0, 0] > stain_od(pink, 0)[0, 0]


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((8, 8), np.uint8),
        np.zeros((8, 8, 4), np.uint8),
        np.zeros((8, 8, 3), np.uint16),
        np.zeros((8, 8, 3), np.float32),
        np.zeros((0, 8, 3), np.uint8),
    ],
)
def test_non_rgb_input_is_refused(image):
    with pytest.raises(InputError, match="uint8 RGB"):
        as_rgb(image)


def test_relabel_sequential_closes_gaps_in_order():
    labels = np.array([[0, 7, 7], [3, 3, 0], [0, 9, 9]])
    out, n = relabel_sequential(labels)
    assert n == 3
    assert out.tolist() == [[0, 2, 2], [1, 1, 0], [0, 3, 3]]


def test_measurements_on_a_hand_built_label_image():
    labels = np.zeros((6, 8), np.int32)
    labels[1:3, 1:4] = 1  # 2 × 3 block
    labels[4:6, 5:8] = 2
    rgb = np.zeros((6, 8, 3), np.uint8)
    rgb[labels == 1] = (200, 10, 20)
    table = measure_entities(labels, 2, rgb, mpp=0.5)
    assert table["area_px"].tolist() == [6, 6]
    assert np.allclose(table["area_um2"], [1.5, 1.5])
    assert np.allclose(table["centroid_y"], [1.5, 4.5]) and np.allclose(table["centroid_x"], [2, 6])
    assert [table[k][0] for k in ("bbox_y0", "bbox_x0", "bbox_y1", "bbox_x1")] == [1, 1, 3, 4]
    assert np.allclose([table["mean_r"][0], table["mean_g"][0], table["mean_b"][0]], [200, 10, 20])


def test_centroid_of_a_non_convex_entity_is_moved_inside_it():
    labels = np.zeros((20, 20), np.int32)
    labels[2:18, 2:5] = 1  # a "C": its centroid falls in the opening
    labels[2:5, 2:18] = 1
    labels[15:18, 2:18] = 1
    table = measure_entities(labels, 1, np.zeros((20, 20, 3), np.uint8), mpp=1.0)
    y, x = round(table["centroid_y"][0]), round(table["centroid_x"][0])
    assert labels[y, x] == 1


def test_weighted_measurement_equals_repeating_the_pixels():
    rng = np.random.default_rng(0)
    small = rng.integers(1, 4, (5, 6)).astype(np.int32)
    rgb_small = rng.integers(0, 256, (5, 6, 3)).astype(np.uint8)
    big = np.repeat(np.repeat(small, 3, 0), 3, 1)
    rgb_big = np.repeat(np.repeat(rgb_small, 3, 0), 3, 1)
    weighted = measure_entities(small, 3, rgb_small, 3.0, weights=np.full((5, 6), 9.0))
    full = measure_entities(big, 3, rgb_big, 1.0)
    assert np.array_equal(weighted["area_px"], full["area_px"])
    for key in ("mean_r", "mean_g", "mean_b", "od_h", "od_e"):
        assert np.allclose(weighted[key], full[key])


def test_shape_descriptors_on_request():
    labels = np.zeros((30, 30), np.int32)
    labels[5:25, 10:16] = 1
    table = measure_entities(labels, 1, np.zeros((30, 30, 3), np.uint8), mpp=0.5, shape=True)
    assert table["eccentricity"][0] > 0.8
    assert table["major_axis_um"][0] > table["minor_axis_um"][0]


@pytest.mark.parametrize("fill", [0.1, 0.9])  # sparse (boxes from the gathered pixels) and dense (find_objects)
def test_bounding_boxes_enclose_exactly_each_entity(fill):
    rng = np.random.default_rng(3)
    labels = np.where(rng.random((40, 50)) < fill, rng.integers(1, 30, (40, 50)), 0)
    labels, n = relabel_sequential(labels)
    table = measure_entities(labels, n, np.zeros((40, 50, 3), np.uint8), mpp=1.0)
    for i in range(n):
        ys, xs = np.nonzero(labels == i + 1)
        box = [table[k][i] for k in ("bbox_y0", "bbox_x0", "bbox_y1", "bbox_x1")]
        assert box == [ys.min(), xs.min(), ys.max() + 1, xs.max() + 1]
