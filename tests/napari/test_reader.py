"""The npe2 reader and sample data in a real viewer (Xvfb)."""

import dask.array as da
import numpy as np
import pytest
import tifffile

from hmgdm_core.io import write_ome_tiff
from napari_hmgdm._reader import get_reader


def test_get_reader_declines_other_files(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    assert get_reader(str(path)) is None
    assert get_reader(str(tmp_path / "missing.svs")) is None


def test_open_sample_svs_through_the_plugin(make_napari_viewer, sample_svs):
    viewer = make_napari_viewer()
    layers = viewer.open(str(sample_svs), plugin="napari-hmgdm")
    assert len(layers) == 1
    layer = layers[0]
    assert layer.rgb and not layer.multiscale
    assert isinstance(layer.data, da.Array)  # lazy: tiles are decoded on demand
    assert layer.data.shape == (2967, 2220, 3)
    np.testing.assert_allclose(layer.scale, [0.499, 0.499])
    assert layer.metadata["hmgdm_path"] == str(sample_svs)


def test_sample_data_contribution(make_napari_viewer):
    viewer = make_napari_viewer()
    assert not viewer.scale_bar.visible
    viewer.open_sample("napari-hmgdm", "cmu1")
    assert [layer.name for layer in viewer.layers] == ["CMU-1-Small-Region.svs"]
    assert viewer.scale_bar.visible and str(viewer.layers[0].units[0]) in ("µm", "micrometer")
    viewer.open_sample("napari-hmgdm", "cmu1_region")
    (region,) = [layer for layer in viewer.layers if layer.name == "region"]
    assert region.shape_type == ["rectangle"] and len(region.data) == 1


def test_samples_sit_in_an_h_mgdm_group(make_napari_viewer):
    # napari lists a plugin's samples in a submenu named after it once it has more than one.
    from npe2 import PluginManager

    manifest = PluginManager.instance().get_manifest("napari-hmgdm")
    assert manifest.display_name == "H-MGDM" and len(manifest.contributions.sample_data) >= 2
    viewer = make_napari_viewer()
    titles = [action.text() for action in viewer.window.file_menu.actions()]
    assert "Open Sample" in titles
    sample_menu = next(a.menu() for a in viewer.window.file_menu.actions() if a.text() == "Open Sample")
    groups = {a.text(): a.menu() for a in sample_menu.actions() if a.menu() is not None}
    assert "H-MGDM" in groups
    names = [a.text().replace("&&", "&") for a in groups["H-MGDM"].actions()]  # Qt doubles a literal &
    assert "CMU-1 small region (H&E skin, 20x, CC0)" in names and "CMU-1 small region with a region drawn" in names


@pytest.fixture
def pyramid(tmp_path, monuseg_dir):
    tile = tifffile.imread(sorted((monuseg_dir / "images").glob("*/*.tif"))[0])
    image = np.concatenate([tile, tile[::-1]], axis=0)
    return write_ome_tiff(tmp_path / "pyr.ome.tif", image, mpp=0.25, tile=256), image


def test_pyramid_opens_as_multiscale(make_napari_viewer, pyramid):
    path, image = pyramid
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(path), plugin="napari-hmgdm")
    assert layer.multiscale
    shapes = [tuple(level.shape) for level in layer.data]
    assert shapes == [(2000, 1000, 3), (1000, 500, 3), (500, 250, 3), (250, 125, 3)]
    np.testing.assert_array_equal(np.asarray(layer.data[0][100:200, 300:400]), image[100:200, 300:400])
    np.testing.assert_allclose(layer.scale, [0.25, 0.25])


def test_large_single_level_image_gets_a_lazy_pyramid(tmp_path):
    from hmgdm_core.io import open_slide
    from napari_hmgdm._layers import slide_layer_data

    path = tmp_path / "big.tif"
    tifffile.imwrite(path, np.zeros((6000, 5000, 3), np.uint8), tile=(512, 512), photometric="rgb")
    data, kwargs, kind = slide_layer_data(open_slide(path))
    assert kind == "image" and kwargs["multiscale"]
    assert [d.shape[:2] for d in data] == [(6000, 5000), (3000, 2500), (1500, 1250)]
    assert all(isinstance(d, da.Array) for d in data)


def test_screenshot_shows_the_slide(make_napari_viewer, sample_svs):
    viewer = make_napari_viewer(show=True)
    viewer.open(str(sample_svs), plugin="napari-hmgdm")
    viewer.reset_view()
    shot = viewer.screenshot(canvas_only=True, flash=False)
    rgb = shot[..., :3].astype(int)
    assert rgb.std() > 10  # not blank
    # H&E pink/purple: red and blue above green by a margin, over a sizeable area.
    stained = (rgb[..., 0] - rgb[..., 1] > 30) & (rgb[..., 2] - rgb[..., 1] > 15)
    assert stained.mean() > 0.05
