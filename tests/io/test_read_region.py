"""read_region against full tifffile reads, OME-TIFF/OME-Zarr round trips, lazy opening."""

import tracemalloc

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
import zarr

from hmgdm_core.io import open_slide, write_ome_tiff
from hmgdm_core.io.ome_tiff import pyramid_levels

BOXES = [(0, 0, 1, 1), (0, 0, 240, 240), (17, 33, 300, 411), (239, 239, 2, 2), (1000, 500, 1024, 1024)]


def _edge_boxes(shape):
    rows, cols = shape
    return [(rows - 7, cols - 9, 7, 9), (0, cols - 300, rows, 300), (rows - 1, 0, 1, cols)]


def test_svs_read_region_equals_full_read(sample_svs):
    full = tifffile.imread(sample_svs)
    with open_slide(sample_svs) as slide:
        assert slide.format == "svs"
        assert slide.mpp == pytest.approx(0.499)
        assert slide.shape == full.shape[:2]
        for y, x, h, w in BOXES + _edge_boxes(slide.shape):
            got = slide.read_region(y, x, h, w)
            assert got.dtype == np.uint8
            np.testing.assert_array_equal(got, full[y : y + h, x : x + w])


@pytest.mark.parametrize("index", [0, 13])
def test_monuseg_tiff_read_region_equals_full_read(monuseg_dir, index):
    path = sorted((monuseg_dir / "images").glob("*/*.tif"))[index]
    full = tifffile.imread(path)
    with open_slide(path, mpp=0.2527) as slide:
        assert slide.format == "tiff"
        for y, x, h, w in [(0, 0, 1000, 1000), (10, 20, 87, 88), (500, 3, 300, 997), *_edge_boxes(slide.shape)]:
            np.testing.assert_array_equal(slide.read_region(y, x, h, w), full[y : y + h, x : x + w])


def test_read_at_mpp_is_area_average(sample_svs):
    full = tifffile.imread(sample_svs).astype(np.float64)
    with open_slide(sample_svs) as slide:
        got = slide.read_region(100, 200, 512, 768, mpp=slide.mpp * 4)
    assert got.shape == (128, 192, 3)
    expected = full[100:612, 200:968].reshape(128, 4, 192, 4, 3).mean(axis=(1, 3))
    assert np.abs(got.astype(np.float64) - expected).max() <= 0.5 + 1e-9


def test_read_at_fractional_mpp_has_documented_shape(sample_svs):
    with open_slide(sample_svs) as slide:
        region = slide.region(10, 10, 1000, 700, mpp=1.3)
        image = slide.read(region)
    assert image.shape == (*region.shape, 3) == (round(1000 * 0.499 / 1.3), round(700 * 0.499 / 1.3), 3)


@pytest.fixture(scope="module")
def he_image(monuseg_dir):
    """A real 2000 x 1500 H&E image: a MoNuSeg tile mirrored (no seams, real texture)."""
    tile = tifffile.imread(sorted((monuseg_dir / "images").glob("*/*.tif"))[2])
    return np.concatenate([np.concatenate([tile, tile[:, ::-1]], axis=1)] * 2, axis=0)[:, :1500]


def test_ome_tiff_pyramid_round_trip(tmp_path, he_image):
    path = write_ome_tiff(tmp_path / "pyramid.ome.tif", he_image, mpp=0.25, tile=256)
    expected = pyramid_levels(he_image, 256)
    with open_slide(path) as slide:
        assert slide.format == "ome-tiff"
        assert slide.mpp == pytest.approx(0.25)
        assert [lv.shape for lv in slide.levels] == [e.shape[:2] for e in expected]
        assert len(slide.levels) == 4  # 2000 -> 1000 -> 500 -> 250
        for index, level in enumerate(expected):
            ds = slide.levels[index].downsample
            y, x, h, w = 256, 512, 1024, 512
            got = slide.read_region(y, x, h, w, level=index)
            r0, c0 = round(y / ds[0]), round(x / ds[1])
            np.testing.assert_array_equal(got, level[r0 : round((y + h) / ds[0]), c0 : round((x + w) / ds[1])])
        # A target resolution of one level reads that level exactly.
        np.testing.assert_array_equal(slide.read_region(0, 0, 2000, 1500, mpp=1.0), expected[2])


def test_ome_tiff_write_is_atomic_and_replaces(tmp_path, he_image):
    path = tmp_path / "out.ome.tif"
    path.write_bytes(b"previous")
    write_ome_tiff(path, he_image[:300, :300], mpp=0.5)
    assert open_slide(path).shape == (300, 300)
    assert [p.name for p in tmp_path.iterdir()] == ["out.ome.tif"]


def test_ome_zarr_channel_first_pyramid(tmp_path, he_image):
    levels = pyramid_levels(he_image, 512)
    root = zarr.open_group(tmp_path / "slide.ome.zarr", mode="w")
    datasets = []
    for index, level in enumerate(levels):
        arr = root.create_array(str(index), shape=(3, *level.shape[:2]), chunks=(3, 256, 256), dtype="uint8")
        arr[:] = np.moveaxis(level, -1, 0)
        datasets.append({"path": str(index), "coordinateTransformations": [
            {"type": "scale", "scale": [1.0, 0.25 * 2**index, 0.25 * 2**index]}]})
    axes = [{"name": "c", "type": "channel"}, {"name": "y", "type": "space", "unit": "micrometer"},
            {"name": "x", "type": "space", "unit": "micrometer"}]
    root.attrs["ome"] = {"version": "0.5", "multiscales": [{"axes": axes, "datasets": datasets}]}
    with open_slide(tmp_path / "slide.ome.zarr") as slide:
        assert slide.format == "ome-zarr"
        assert slide.mpp == pytest.approx(0.25)
        assert len(slide.levels) == len(levels) == 3
        np.testing.assert_array_equal(slide.read_region(100, 200, 300, 400), he_image[100:400, 200:600])
        np.testing.assert_array_equal(slide.read_region(0, 0, 2000, 1500, level=2), levels[2])
        np.testing.assert_array_equal(slide.levels[1].as_dask().compute(), levels[1])


def test_plain_zarr_array(tmp_path, he_image):
    arr = zarr.create_array(tmp_path / "a.zarr", shape=he_image.shape, chunks=(256, 256, 3), dtype="uint8")
    arr[:] = he_image
    with open_slide(tmp_path / "a.zarr", mpp=0.25) as slide:
        assert slide.format == "zarr"
        np.testing.assert_array_equal(slide.read_region(5, 6, 70, 80), he_image[5:75, 6:86])


@pytest.mark.parametrize("ext", ["png", "jpg"])
def test_png_and_jpeg(tmp_path, he_image, ext):
    path = tmp_path / f"tile.{ext}"
    iio.imwrite(path, he_image[:150, :150])
    decoded = iio.imread(path)
    with open_slide(path) as slide:
        assert slide.format == {"png": "png", "jpg": "jpeg"}[ext]
        assert not slide.mpp_known
        np.testing.assert_array_equal(slide.read_region(10, 20, 30, 40), decoded[10:40, 20:60])


def test_opening_the_svs_decodes_no_pixels(sample_svs):
    """Level 0 is 2967 x 2220 x 3 = 19.8 MB; opening must allocate a small fraction of that."""
    level0_bytes = 2967 * 2220 * 3
    tracemalloc.start()
    try:
        slide = open_slide(sample_svs)
        _, peak_open = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        slide.read_region(1000, 1000, 256, 256)
        _, peak_read = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    slide.close()
    assert peak_open < 0.05 * level0_bytes, peak_open
    # A 256² read touches at most 4 JPEG tiles of 240² (a few hundred kB), not the level.
    assert peak_read < 0.1 * level0_bytes, peak_read
