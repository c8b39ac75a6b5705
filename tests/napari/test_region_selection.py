"""Viewer selections to Regions, without Qt (napari's ViewerModel)."""

import numpy as np
import pytest
from napari.components import ViewerModel

from hmgdm_core.errors import RegionError
from napari_hmgdm._reader import read_slide
from napari_hmgdm._region import region_from_shape, slide_of

MPP = 0.499


@pytest.fixture
def model(sample_svs):
    viewer = ViewerModel()
    data, kwargs, _ = read_slide(str(sample_svs))[0]
    return viewer, viewer.add_image(data, **kwargs)


def _rect(viewer, y, x, h, w):
    corners = np.array([[y - 0.5, x - 0.5], [y + h - 0.5, x + w - 0.5]]) * MPP
    return viewer.add_shapes([corners], shape_type="rectangle", units=("µm", "µm"))


@pytest.mark.parametrize(("y", "x", "h", "w"), [(1500, 800, 512, 512), (0, 0, 7, 9), (2000, 1312, 333, 101)])
def test_rectangle_gives_exactly_its_pixels(model, y, x, h, w):
    viewer, image = model
    region, polygon = region_from_shape(_rect(viewer, y, x, h, w), 0, image, mpp=1.0)
    assert (region.y, region.x, region.height, region.width) == (y, x, h, w)
    assert region.base_mpp == MPP and region.mpp == 1.0
    np.testing.assert_allclose(polygon.min(axis=0), [y - 0.5, x - 0.5], atol=1e-3)


def test_rectangle_overhanging_the_slide_is_clipped(model):
    viewer, image = model
    region, _ = region_from_shape(_rect(viewer, 2900, 2100, 500, 500), 0, image, mpp=None)
    assert region.bounds == (2900, 2100, 2967, 2220)
    with pytest.raises(RegionError, match="outside the image"):
        region_from_shape(_rect(viewer, 5000, 5000, 10, 10), 0, image, mpp=None)


def test_layer_not_opened_by_the_plugin_is_refused():
    viewer = ViewerModel()
    layer = viewer.add_image(np.zeros((10, 10, 3), np.uint8), rgb=True)
    with pytest.raises(RegionError, match="not opened with napari-hmgdm"):
        slide_of(layer)
