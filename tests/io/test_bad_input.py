"""Each kind of bad input raises SlideError/RegionError (both InputError) with a useful message."""

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
import zarr

from hmgdm_core.errors import InputError, RegionError, SlideError
from hmgdm_core.io import open_slide


def test_missing_file(tmp_path):
    with pytest.raises(SlideError, match="no such file"):
        open_slide(tmp_path / "nope.svs")


def test_truncated_svs(tmp_path, sample_svs):
    path = tmp_path / "truncated.svs"
    path.write_bytes(sample_svs.read_bytes()[: 600_000])
    with pytest.raises(SlideError, match="truncated|corrupt|readable TIFF"):
        slide = open_slide(path)
        slide.read_region(0, 0, *slide.shape)


def test_corrupt_tiff_header(tmp_path):
    path = tmp_path / "corrupt.tif"
    path.write_bytes(b"II*\x00" + bytes(range(256)) * 8)
    with pytest.raises(SlideError, match="truncated or corrupt|not a readable TIFF"):
        open_slide(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.tif"
    path.write_bytes(b"")
    with pytest.raises(SlideError, match="empty"):
        open_slide(path)


def test_unsupported_format(tmp_path):
    path = tmp_path / "slide.ndpi"
    path.write_text("not an image")
    with pytest.raises(SlideError, match="unsupported format.*OME-TIFF"):
        open_slide(path)


def test_directory_that_is_not_zarr(tmp_path):
    with pytest.raises(SlideError, match="not a zarr store"):
        open_slide(tmp_path)


def test_zarr_group_without_multiscales(tmp_path):
    zarr.open_group(tmp_path / "g.zarr", mode="w")
    with pytest.raises(SlideError, match="multiscales"):
        open_slide(tmp_path / "g.zarr")


@pytest.mark.parametrize(
    ("y", "x", "h", "w"),
    [(-1, 0, 10, 10), (0, 0, 3000, 10), (2960, 2210, 10, 20), (5000, 5000, 10, 10)],
)
def test_region_outside_image(sample_svs, y, x, h, w):
    with open_slide(sample_svs) as slide, pytest.raises(RegionError, match="not inside the image"):
        slide.read_region(y, x, h, w)


@pytest.mark.parametrize(("h", "w"), [(0, 10), (10, 0), (-5, 10)])
def test_zero_or_negative_size(sample_svs, h, w):
    with open_slide(sample_svs) as slide, pytest.raises(RegionError, match="must be positive"):
        slide.read_region(0, 0, h, w)


def test_grayscale(tmp_path):
    tifffile.imwrite(tmp_path / "gray.tif", np.zeros((64, 64), np.uint8))
    iio.imwrite(tmp_path / "gray.png", np.zeros((64, 64), np.uint8))
    for name in ("gray.tif", "gray.png"):
        with pytest.raises(SlideError, match="grayscale"):
            open_slide(tmp_path / name)


def test_rgba(tmp_path):
    iio.imwrite(tmp_path / "rgba.png", np.zeros((64, 64, 4), np.uint8))
    with pytest.raises(SlideError, match="RGBA.*alpha"):
        open_slide(tmp_path / "rgba.png")


def test_16_bit(tmp_path):
    tifffile.imwrite(tmp_path / "deep.tif", np.zeros((64, 64, 3), np.uint16), photometric="rgb")
    with pytest.raises(SlideError, match="uint16.*8-bit"):
        open_slide(tmp_path / "deep.tif")


def test_missing_level(sample_svs):
    with open_slide(sample_svs) as slide, pytest.raises(SlideError, match="level 3 does not exist.*0..0"):
        slide.read_region(0, 0, 10, 10, level=3)


def test_level_and_mpp_together(sample_svs):
    with open_slide(sample_svs) as slide, pytest.raises(SlideError, match="either level= or mpp="):
        slide.read_region(0, 0, 10, 10, level=0, mpp=1.0)


def test_unknown_resolution_says_how_to_give_it(tmp_path):
    iio.imwrite(tmp_path / "tile.png", np.full((32, 32, 3), 200, np.uint8))
    slide = open_slide(tmp_path / "tile.png")
    with pytest.raises(SlideError, match="mpp="):
        slide.read_region(0, 0, 8, 8, mpp=1.0)
    assert open_slide(tmp_path / "tile.png", mpp=0.5).mpp == 0.5


@pytest.mark.parametrize("mpp", [0, -1, float("nan")])
def test_bad_mpp_override(sample_svs, mpp):
    with pytest.raises(SlideError, match="positive"):
        open_slide(sample_svs, mpp=mpp)


def test_all_errors_are_input_errors():
    assert issubclass(SlideError, InputError) and issubclass(RegionError, InputError)
    assert issubclass(InputError, ValueError)
