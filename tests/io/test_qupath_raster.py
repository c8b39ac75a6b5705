"""The one-pass polygon fill: skimage.draw.polygon's pixels, overlaps won by the later outline, round trips."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.draw import polygon

from hmgdm_core.io import Region
from hmgdm_core.io.qupath import entity_outlines, polygon_labels, polygon_pixels, polygon_runs

SHAPE = (24, 20)
# Vertices on a 1/8-pixel grid keep the crossing arithmetic exact (as on traced outlines' half-pixel
# corners), some outside the image so rings are clipped; integers put vertices and edges on pixel centres.
coordinate = st.integers(-40, 220).map(lambda v: v / 8)
ring = st.lists(st.tuples(coordinate, coordinate), min_size=3, max_size=9).map(np.array)


def _skimage_mask(vertices):
    mask = np.zeros(SHAPE, bool)
    rr, cc = polygon(vertices[:, 0], vertices[:, 1], shape=SHAPE)
    mask[rr, cc] = True
    return mask


def _sequential(rings, part, hole, label):
    """The previous import: each polygon drawn in turn (exterior, minus its own holes), later ones on top."""
    out = np.zeros(SHAPE, np.int64)
    for p in range(len(label)):
        inside = np.zeros(SHAPE, bool)
        for r, rp, rh in zip(rings, part, hole, strict=True):
            if rp == p and not rh:
                inside |= _skimage_mask(r)
        for r, rp, rh in zip(rings, part, hole, strict=True):
            if rp == p and rh:
                inside &= ~_skimage_mask(r)
        out[inside] = label[p]
    return out


@settings(max_examples=150, deadline=None)
@given(rings=st.lists(ring, min_size=1, max_size=4))
def test_pixels_are_those_of_skimage_polygon_ring_by_ring(rings):
    which, rows, cols = polygon_pixels(np.concatenate(rings), [len(r) for r in rings], SHAPE)
    assert ((rows >= 0) & (rows < SHAPE[0]) & (cols >= 0) & (cols < SHAPE[1])).all()
    for k, vertices in enumerate(rings):
        mine = np.zeros(SHAPE, bool)
        mine[rows[which == k], cols[which == k]] = True
        assert np.array_equal(mine, _skimage_mask(vertices))
        assert (which == k).sum() == mine.sum()  # each pixel once


@settings(max_examples=60, deadline=None)
@given(rings=st.lists(ring, min_size=2, max_size=6), data=st.data())
def test_overlapping_polygons_and_holes_fill_as_drawn_in_file_order(rings, data):
    hole = [False] + [data.draw(st.booleans()) for _ in rings[1:]]
    part = np.cumsum(~np.array(hole)) - 1
    label = np.arange(1, part[-1] + 2)
    if data.draw(st.booleans()) and len(label) > 1:
        label[-1] = label[-2]  # two polygons of one MultiPolygon share a label
    got = polygon_labels(np.concatenate(rings), [len(r) for r in rings], part, hole, label, SHAPE)
    assert np.array_equal(got, _sequential(rings, part, hole, label))


def test_touching_polygons_share_their_edge_pixels_with_the_later_one():
    left = np.array([[2, 2], [2, 8], [10, 8], [10, 2]], float)  # columns 2..8 (edges included)
    right = np.array([[2, 8], [2, 14], [10, 14], [10, 8]], float)  # columns 8..14
    labels = polygon_labels(np.concatenate([left, right]), [4, 4], [0, 1], [False, False], [1, 2], SHAPE)
    assert (labels[2:11, 2:8] == 1).all() and (labels[2:11, 8:15] == 2).all()  # column 8: the later polygon
    swapped = polygon_labels(np.concatenate([right, left]), [4, 4], [0, 1], [False, False], [1, 2], SHAPE)
    assert (swapped[2:11, 8] == 2).all()  # now the left square is later and wins the shared column


def test_a_hole_empties_only_its_own_polygon():
    under = np.array([[0, 0], [0, 19], [23, 19], [23, 0]], float)
    outer = np.array([[2.5, 2.5], [2.5, 16.5], [20.5, 16.5], [20.5, 2.5]])
    hole = np.array([[6.5, 6.5], [6.5, 10.5], [12.5, 10.5], [12.5, 6.5]])
    labels = polygon_labels(
        np.concatenate([under, outer, hole]), [4, 4, 4], [0, 1, 1], [False, False, True], [1, 2], SHAPE
    )
    assert (labels[7:13, 7:11] == 1).all()  # the earlier polygon shows through the hole
    assert (labels[3:7, 3:17] == 2).all() and labels[0, 0] == 1


def test_runs_are_disjoint_and_short_rings_enclose_nothing():
    square = np.array([[1, 1], [1, 5], [5, 5], [5, 1]], float)
    segment = np.array([[0, 0], [9, 9]], float)
    ring, row, c0, c1 = polygon_runs(np.concatenate([square, square + 0.5, segment]), [4, 4, 2], SHAPE)
    assert set(ring.tolist()) == {0, 1}
    for k in (0, 1):
        keys = row[ring == k]
        assert len(keys) == len(np.unique(keys))  # convex: one merged run per row
        assert (c1 > c0).all()


def test_traced_outlines_fill_back_to_the_same_labels_at_any_read_resolution():
    rng = np.random.default_rng(3)
    labels = np.zeros((60, 70), np.int64)
    yy, xx = np.mgrid[:60, :70]
    for k in range(1, 13):  # overlapping discs: later discs cut earlier ones into touching shapes
        cy, cx, r = rng.integers(6, 54), rng.integers(6, 64), rng.integers(3, 8)
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = k
    for region in (Region(100, 300, 60, 70, 0.25), Region(100, 300, 120, 140, 0.25, 0.5)):
        outlines = entity_outlines(labels, region)
        present = [k for k, r in enumerate(outlines, 1) if r is not None]
        rings = [region.from_level0(outlines[k - 1][:, ::-1]) for k in present]
        parts = np.arange(len(rings))
        again = polygon_labels(np.concatenate(rings), [len(r) for r in rings], parts, parts < 0, present, labels.shape)
        simple = [k for k in present if np.array_equal(again == k, labels == k)]
        assert len(simple) >= len(present) - 1  # pinched shapes (touching at a corner only) may differ
