import itertools

import numpy as np
import pytest

from hmgdm_core.errors import InputError
from hmgdm_core.io import Region, open_slide
from hmgdm_core.overlays import PatchGrid


def cover(boxes, shape, origin=(0, 0)):
    """Count of boxes covering each pixel of an array of ``shape`` placed at ``origin``."""
    count = np.zeros(shape, dtype=np.int64)
    for y0, x0, y1, x1 in boxes:
        count[y0 - origin[0] : y1 - origin[0], x0 - origin[1] : x1 - origin[1]] += 1
    return count


# Integer and fractional downsamples: level-0 edges are rounded, the tiling must stay exact.
REGIONS = [Region(10, 20, 230, 170, 0.25), Region(7, 3, 301, 257, 0.25, 0.5), Region(0, 0, 333, 290, 0.25, 0.6)]


@pytest.mark.parametrize("region", REGIONS)
@pytest.mark.parametrize("keep_partial", [False, True])
def test_default_grid_tiles_the_region_exactly(region, keep_partial):
    grid = PatchGrid(region, 64, keep_partial=keep_partial)
    rows, cols = region.shape
    boxes = grid.boxes
    assert len(boxes) == len(grid) == np.prod(grid.grid_shape)
    assert np.all(boxes[:, :2] >= 0) and np.all(boxes[:, 2] <= rows) and np.all(boxes[:, 3] <= cols)
    covered = (rows, cols) if keep_partial else (rows // 64 * 64, cols // 64 * 64)
    read = cover(boxes, (rows, cols))
    assert np.all(read[: covered[0], : covered[1]] == 1) and read.sum() == covered[0] * covered[1]
    # The same in level-0 pixels of the slide: inside the region, disjoint, no gap.
    level0 = grid.level0_boxes
    y0, x0, y1, x1 = region.bounds
    assert np.all(level0[:, 0] >= y0) and np.all(level0[:, 1] >= x0)
    assert np.all(level0[:, 2] <= y1) and np.all(level0[:, 3] <= x1)
    slide = cover(level0, (region.height, region.width), (region.y, region.x))
    assert slide.max() == 1
    span = level0[:, 2:].max(axis=0) - np.array([region.y, region.x])
    assert slide[: span[0], : span[1]].all()
    if keep_partial:
        assert tuple(span) == (region.height, region.width)
    else:
        assert np.all(boxes[:, 2] - boxes[:, 0] == 64) and np.all(boxes[:, 3] - boxes[:, 1] == 64)


def test_patches_are_row_major_subregions_and_cut_the_image(sample_svs):
    with open_slide(sample_svs) as slide:
        region = Region(1000, 800, 512, 640, slide.mpp, 2 * slide.mpp)
        image = slide.read(region)
        grid = PatchGrid(region, 64)
        assert grid.grid_shape == (4, 5)
        patches = grid.cut(image)
        for patch, sub, box in zip(patches, grid.regions(), grid.boxes, strict=True):
            assert patch.shape == (64, 64, 3) and sub.shape == (64, 64) and sub.mpp == region.mpp
            assert np.array_equal(patch, image[box[0] : box[2], box[1] : box[3]])
        # A patch read from the slide on its own shows the pixels of the cut (integer downsample).
        assert np.abs(slide.read(grid.regions()[7]).astype(int) - patches[7].astype(int)).mean() < 2
    starts = grid.boxes[:, :2]
    assert [tuple(s) for s in starts[:6]] == [(0, 0), (0, 64), (0, 128), (0, 192), (0, 256), (64, 0)]


@pytest.mark.parametrize("keep_partial", [False, True])
def test_every_patch_region_reads_to_its_patch_shape_at_fractional_downsamples(keep_partial):
    # 0.5 µm/px on a 0.499 µm/px scan (a "20x" read of a 40x slide) gave 64 x 65 regions for 64-px patches, which
    # graph_from_image refuses; finer than the scan (mpp 0.2) each patch gets its own mpp.
    for base, mpp in [(0.499, 0.5), (0.2527, 0.5), (0.499, 0.737), (0.25, 1.9), (0.499, 0.2), (0.25, 0.13)]:
        region = Region(1400, 700, 1000, 1017, base, mpp)
        for size in (32, 64, 100):
            grid = PatchGrid(region, size, keep_partial=keep_partial)
            for sub, (y0, x0, y1, x1), level0 in zip(grid.regions(), grid.boxes, grid.level0_boxes, strict=True):
                square = y1 - y0 == x1 - x0
                if square or mpp >= base:
                    assert sub.shape == (y1 - y0, x1 - x0), (base, mpp, size, sub)
                assert (sub.y, sub.x) == tuple(level0[:2])
                slack = 1 + region.downsample / 2  # the box's edges are rounded on their own
                assert abs(sub.y + sub.height - level0[2]) <= slack and abs(sub.x + sub.width - level0[3]) <= slack
                assert sub.mpp == mpp or mpp < base


def test_stride_makes_patches_overlap_and_the_raster_splits_overlaps_by_nearest_centre():
    region = Region(0, 0, 200, 200, 0.5)
    grid = PatchGrid(region, 64, stride=32)
    boxes = grid.boxes
    assert grid.grid_shape == (5, 5)
    overlaps = [
        a for a, b in itertools.combinations(range(len(boxes)), 2)
        if min(boxes[a][2], boxes[b][2]) > max(boxes[a][0], boxes[b][0])
        and min(boxes[a][3], boxes[b][3]) > max(boxes[a][1], boxes[b][1])
    ]
    assert overlaps  # neighbours share 32-pixel strips
    raster = grid.label_raster()
    assert raster.shape == region.shape
    covered = cover(boxes, region.shape) > 0
    assert np.array_equal(raster >= 0, covered)
    ys, xs = np.nonzero(covered)
    # Every covered pixel goes to a patch that contains it and whose centre is nearest along each axis.
    picked = boxes[raster[ys, xs]]
    assert np.all((picked[:, 0] <= ys) & (ys < picked[:, 2]) & (picked[:, 1] <= xs) & (xs < picked[:, 3]))
    for axis, coords in ((0, ys), (1, xs)):
        spans = np.unique(boxes[:, [axis, axis + 2]], axis=0)
        centres = (spans[:, 0] + spans[:, 1] - 1) / 2
        inside = (spans[:, 0][None] <= coords[:, None]) & (coords[:, None] < spans[:, 1][None])
        nearest = np.where(inside, np.abs(coords[:, None] - centres[None]), np.inf).min(axis=1)
        chosen = np.abs(coords - (picked[:, axis] + picked[:, axis + 2] - 1) / 2)
        assert np.array_equal(chosen, nearest)


def test_label_raster_marks_each_pixel_with_its_patch_and_downsamples():
    region = Region(0, 0, 150, 130, 0.5)
    grid = PatchGrid(region, 32)
    raster = grid.label_raster()
    for index, (y0, x0, y1, x1) in enumerate(grid.boxes):
        assert np.all(raster[y0:y1, x0:x1] == index)
    assert np.count_nonzero(raster >= 0) == len(grid) * 32 * 32
    assert np.all(raster[128:, :] == -1) and np.all(raster[:, 128:] == -1)
    coarse = grid.label_raster(downsample=4)
    assert coarse.shape == (38, 33) and np.array_equal(coarse[:32, :32], raster[1:128:4, 1:128:4])


def test_bad_grids_are_refused():
    region = Region(0, 0, 100, 100, 0.5)
    with pytest.raises(InputError, match="exceeds"):
        PatchGrid(region, 128)
    assert len(PatchGrid(region, 128, keep_partial=True)) == 1
    with pytest.raises(InputError, match="stride"):
        PatchGrid(region, 32, stride=0)
    with pytest.raises(InputError, match="not the size"):
        PatchGrid(region, 32).cut(np.zeros((50, 50, 3), np.uint8))
