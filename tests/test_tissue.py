"""Tissue masks: glass is not tissue, tissue is, and empty regions are refused clearly."""

import numpy as np
import pytest
import tifffile

from hmgdm_core.errors import InputError, NoTissueError
from hmgdm_core.io import open_slide
from hmgdm_core.tissue import compute_tissue_mask, require_tissue, tissue_mask_from_rgb


@pytest.fixture(scope="module")
def cmu_mask(sample_svs):
    with open_slide(sample_svs) as slide:
        return slide, compute_tissue_mask(slide)


def test_sample_slide_tissue_fraction(cmu_mask):
    _, mask = cmu_mask
    # The biopsy covers about a third of the crop (checked by eye on the thumbnail).
    assert 0.25 < mask.fraction_total < 0.5
    assert mask.mask.shape == (round(2967 * 0.499 / 8), round(2220 * 0.499 / 8))


def test_glass_and_tissue_regions(cmu_mask):
    slide, mask = cmu_mask
    glass = slide.region(0, 0, 400, 400)  # top-left corner: empty glass
    tissue = slide.region(1500, 800, 400, 400)  # the epidermis
    assert mask.fraction(glass) == 0.0
    assert mask.fraction(tissue) > 0.9
    with pytest.raises(NoTissueError, match=r"0\.0% tissue.*Select an area"):
        require_tissue(mask.fraction(glass), 0.2)
    require_tissue(mask.fraction(tissue), 0.2)
    # A region smaller than one mask pixel takes the pixel under its centre.
    assert mask.fraction(slide.region(1700, 1000, 3, 3)) == 1.0


def test_all_tissue_tile_is_mostly_tissue(monuseg_dir):
    for path in sorted((monuseg_dir / "images").glob("*/*.tif"))[:6]:
        assert tissue_mask_from_rgb(tifffile.imread(path), 0.25).mean() > 0.8, path.name


@pytest.mark.parametrize("value", [0, 128, 245, 255])
def test_uniform_images_have_no_tissue(value):
    assert not tissue_mask_from_rgb(np.full((64, 64, 3), value, np.uint8), 1.0).any()


def test_non_rgb_is_refused():
    with pytest.raises(InputError, match="RGB"):
        tissue_mask_from_rgb(np.zeros((8, 8), np.uint8), 1.0)


@pytest.mark.parametrize("mpp", [0.0, -1.0, float("inf"), float("nan")])
def test_resolution_must_be_finite_and_positive(mpp):
    with pytest.raises(InputError, match="finite positive"):
        tissue_mask_from_rgb(np.full((64, 64, 3), 200, np.uint8), mpp)


def test_small_holes_filled_but_glass_kept():
    image = np.full((200, 200, 3), 250, np.uint8)  # glass
    image[40:160, 40:160] = (200, 80, 160)  # eosin-pink tissue, 120² px at 1 µm/px
    image[90:100, 90:100] = 250  # a 100 µm² lumen inside
    mask = tissue_mask_from_rgb(image, 1.0)
    assert mask[40:160, 40:160].all()
    assert not mask[:40].any() and not mask[160:].any()
