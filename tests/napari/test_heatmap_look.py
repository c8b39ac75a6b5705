"""Heatmaps over the slide leave the tissue readable (screenshots of a real canvas)."""

import numpy as np
import pytest
from napari.layers import Layer

from hmgdm_core.io import Region
from napari_hmgdm._layers import heatmap_kwargs, patch_layer_data

MPP = 0.499
REGION = Region(1500, 800, 512, 512, base_mpp=MPP, mpp=1.0)  # epidermis and dermis of the sample


def _luminance(shot: np.ndarray) -> np.ndarray:
    rgb = shot[..., :3].astype(np.float64)
    return rgb @ np.array([0.2126, 0.7152, 0.0722])


@pytest.fixture
def canvas(make_napari_viewer, sample_svs):
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1200, 900)
    viewer.open(str(sample_svs), plugin="napari-hmgdm")
    y, x, h, w = REGION.y, REGION.x, REGION.height, REGION.width
    viewer.camera.center = ((y + h / 2) * MPP, (x + w / 2) * MPP)
    viewer.camera.zoom = 6.0  # ~150 µm across: the canvas lies inside the region
    return viewer


def _heatmap(shape: tuple[int, int], kind: str) -> np.ndarray:
    if kind == "ramp":
        return np.tile(np.linspace(0.0, 1.0, shape[1], dtype=np.float32), (shape[0], 1))
    return np.ones(shape, np.float32)  # the worst case: certain everywhere


def _tissue_change(viewer, layer_kwargs: dict, kind: str) -> float:
    shot = viewer.screenshot(canvas_only=True, flash=False)
    data, kwargs, layer_type = patch_layer_data(_heatmap(REGION.shape, kind), REGION.to_dict(), "p(tumour)", "image")
    layer = viewer.add_layer(Layer.create(data, kwargs | layer_kwargs, layer_type))
    over = viewer.screenshot(canvas_only=True, flash=False)
    viewer.layers.remove(layer)
    before, after = _luminance(shot), _luminance(over)
    tissue = before < 215  # not glass
    assert tissue.mean() > 0.3, "the view should show tissue"
    return abs(after[tissue].mean() - before[tissue].mean()) / before[tissue].mean()


@pytest.mark.parametrize("kind", ["ramp", "certain everywhere"])
def test_heatmap_keeps_the_tissue_visible(canvas, kind):
    change = _tissue_change(canvas, heatmap_kwargs((0.0, 1.0)), kind)
    print(f"{kind}: mean tissue luminance changed by {change:.1%}")
    assert change < 0.30, f"mean tissue luminance changed by {change:.0%}"


def test_the_old_additive_look_washed_the_tissue_out(canvas):
    # The control: what the widgets drew before (inferno, 0.6 opacity, additive) fails the same check.
    old = {"colormap": "inferno", "contrast_limits": (0.0, 1.0), "opacity": 0.6, "blending": "additive"}
    change = _tissue_change(canvas, old, "certain everywhere")
    print(f"old additive look: mean tissue luminance changed by {change:.1%}")
    assert change > 0.30
