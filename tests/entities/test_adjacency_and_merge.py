import numpy as np

from hmgdm_core.entities import label_adjacency
from hmgdm_core.entities.colour_merge import colour_stats, merge_by_colour


def test_adjacency_pairs_and_boundary_lengths():
    labels = np.array(
        [
            [1, 1, 2, 2],
            [1, 1, 2, 2],
            [3, 3, 0, 2],
        ]
    )
    pairs, boundary = label_adjacency(labels)
    assert pairs.tolist() == [[1, 2], [1, 3]]
    assert boundary.tolist() == [2, 2]  # background (0) touches 2 and 3 but is never a node


def test_adjacency_of_a_single_entity_is_empty():
    pairs, boundary = label_adjacency(np.ones((5, 5), np.int32))
    assert pairs.shape == (0, 2) and boundary.shape == (0,)


def _two_halves(left, right):
    rgb = np.zeros((10, 20, 3), np.uint8)
    rgb[:, :10] = left
    rgb[:, 10:] = right
    labels = np.ones((10, 20), np.int32)
    labels[:, 5:10] = 2
    labels[:, 10:15] = 3
    labels[:, 15:] = 4
    return labels, rgb


def test_same_colour_merges_and_different_colour_does_not():
    labels, rgb = _two_halves((200, 120, 180), (60, 40, 140))
    pairs, _ = label_adjacency(labels)
    lut = merge_by_colour(colour_stats(labels, 4, rgb), pairs, threshold=0.02)
    assert lut.tolist() == [0, 1, 1, 2, 2]


def test_threshold_zero_keeps_every_superpixel():
    labels, rgb = _two_halves((200, 120, 180), (200, 120, 180))
    pairs, _ = label_adjacency(labels)
    assert merge_by_colour(colour_stats(labels, 4, rgb), pairs, threshold=0).tolist() == [0, 1, 2, 3, 4]
    assert merge_by_colour(colour_stats(labels, 4, rgb), pairs, threshold=0.02).tolist() == [0, 1, 1, 1, 1]


def test_non_adjacent_regions_never_merge():
    rgb = np.full((5, 15, 3), 128, np.uint8)
    labels = np.zeros((5, 15), np.int32)
    labels[:, :5] = 1
    labels[:, 10:] = 2  # same colour, separated by background
    pairs, _ = label_adjacency(labels)
    assert merge_by_colour(colour_stats(labels, 2, rgb), pairs, threshold=1.0).tolist() == [0, 1, 2]
