import numpy as np
import pytest
from skimage.measure import label as connected

from hmgdm_core.entities import SuperpixelConfig, tissue_entities
from hmgdm_core.errors import InputError


def test_superpixels_tile_the_image_and_are_connected(he_crop):
    ents = tissue_entities(he_crop, 0.25)
    assert ents.kind == "tissue" and ents.labels.dtype == np.int32
    assert ents.labels.min() == 1 and ents.labels.max() == ents.n  # every pixel labelled, ids 1..N
    assert connected(ents.labels, background=0, connectivity=1).max() == ents.n  # one piece each
    assert ents.table["area_px"].sum() == he_crop.shape[0] * he_crop.shape[1]


def test_centroids_lie_inside_their_superpixels(he_crop):
    ents = tissue_entities(he_crop, 0.25)
    yx = np.rint(ents.centroids).astype(int)
    assert np.array_equal(ents.labels[yx[:, 0], yx[:, 1]], ents.table["id"])


def test_superpixel_size_is_in_microns(he_crop):
    unmerged = SuperpixelConfig(merge_threshold=0)
    n_default = tissue_entities(he_crop, 0.25, unmerged).n
    expected = he_crop.shape[0] * he_crop.shape[1] * 0.25**2 / unmerged.superpixel_um**2
    assert 0.6 * expected < n_default < 1.4 * expected
    # Half the resolution and half the pixels: the same tissue gives about as many superpixels.
    half = np.ascontiguousarray(he_crop[::2, ::2])
    assert abs(tissue_entities(half, 0.5, unmerged).n - n_default) < 0.3 * n_default


def test_colour_merge_reduces_the_count_and_is_deterministic(he_crop):
    merged = tissue_entities(he_crop, 0.25)
    unmerged = tissue_entities(he_crop, 0.25, SuperpixelConfig(merge_threshold=0))
    assert merged.n < unmerged.n
    again = tissue_entities(he_crop, 0.25)
    assert np.array_equal(merged.labels, again.labels)


def test_tissue_mask_drops_superpixels_off_tissue(he_crop):
    mask = np.zeros(he_crop.shape[:2], bool)
    mask[:, : he_crop.shape[1] // 2] = True
    ents = tissue_entities(he_crop, 0.25, tissue_mask=mask)
    assert ents.n > 0
    assert (ents.centroids[:, 1] < he_crop.shape[1] * 0.6).all()
    none = tissue_entities(he_crop, 0.25, tissue_mask=np.zeros((4, 4), bool))
    assert none.n == 0 and (none.labels == 0).all()


def test_an_image_smaller_than_a_superpixel_is_one_entity():
    tiny = np.full((5, 7, 3), 180, np.uint8)
    ents = tissue_entities(tiny, 0.25)
    assert ents.n == 1 and ents.labels.shape == (5, 7)


def test_bad_parameters_are_refused(he_crop):
    with pytest.raises(InputError):
        SuperpixelConfig(n_superpixels=0)
    with pytest.raises(InputError):
        tissue_entities(he_crop, 0.0)


def test_block_mean_averages_blocks_and_pads_partial_ones_with_edge_pixels():
    from hmgdm_core.entities import block_mean

    rgb = np.zeros((5, 7, 3), np.uint8)
    rgb[:, :4] = 100
    rgb[:, 4:] = 200
    out = block_mean(rgb, 4)
    assert out.shape == (2, 2, 3)
    assert out[..., 0].tolist() == [[100, 200], [100, 200]]
    assert block_mean(rgb, 1) is rgb
