"""Region: coordinate maps are inverse, sizes and clipping behave."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hmgdm_core.errors import RegionError
from hmgdm_core.io import Region


@given(
    y=st.integers(0, 10_000), x=st.integers(0, 10_000), h=st.integers(1, 5000), w=st.integers(1, 5000),
    ds=st.floats(0.5, 16), points=st.lists(st.tuples(st.floats(-10, 500), st.floats(-10, 500)), min_size=1),
)
def test_level0_maps_are_inverse(y, x, h, w, ds, points):
    region = Region(y, x, h, w, 0.25, 0.25 * ds)
    yx = np.array(points)
    np.testing.assert_allclose(region.from_level0(region.to_level0(yx)), yx, atol=1e-6)


def test_pixel_centres_map_into_the_box():
    region = Region(100, 200, 64, 32, base_mpp=0.25, mpp=1.0)
    assert region.shape == (16, 8)
    corners = region.to_level0(np.array([[0, 0], [15, 7]]))
    # Output pixel (0, 0) covers level-0 rows 100..103: its centre is 101.5.
    np.testing.assert_allclose(corners, [[101.5, 201.5], [161.5, 229.5]])


def test_dict_round_trip_and_clip():
    region = Region(-10, 5, 100, 100, 0.5, 2.0)
    assert Region.from_dict(region.to_dict()) == region
    assert region.clipped((50, 60)).bounds == (0, 5, 50, 60)
    with pytest.raises(RegionError, match="outside"):
        region.clipped((3, 3)) and Region(500, 500, 1, 1, 0.5).clipped((100, 100))


@pytest.mark.parametrize("kwargs", [{"height": 0}, {"width": -1}, {"base_mpp": 0}, {"mpp": float("inf")}])
def test_invalid_regions(kwargs):
    args = {"y": 0, "x": 0, "height": 10, "width": 10, "base_mpp": 0.5} | kwargs
    with pytest.raises(RegionError):
        Region(**args)


def test_float_coordinates_are_refused():
    with pytest.raises(RegionError, match="integer"):
        Region(0.5, 0, 10, 10, 0.5)
