import numpy as np
import pytest
import torch

from hmgdm_core.embed import reconstruct
from hmgdm_core.errors import InputError
from hmgdm_core.graph import GraphConfig, entities_for, gather_windows, graph_from_image
from hmgdm_core.io import Region, open_slide
from hmgdm_core.model import HMGDM, ModelConfig
from hmgdm_core.overlays import entity_value_map, node_errors, node_window_errors, paint_reconstruction, paint_windows
from hmgdm_core.vae import EntityVAE, VAEConfig, latent_graph


@pytest.fixture(scope="module")
def tile(sample_svs):
    """A 160² read of the bundled slide at 2× its level-0 µm/px, and its region."""
    with open_slide(sample_svs) as slide:
        region = Region(1200, 900, 320, 320, slide.mpp, 2 * slide.mpp)
        return region, slide.read(region)


def as_uint8(window):
    return np.clip(np.rint((np.asarray(window) + 1) * 127.5), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("size", [5, 4])
def test_a_window_pasted_at_p_lands_exactly_at_p(size):
    rng = np.random.default_rng(0)
    window = rng.uniform(-1, 1, (1, 3, size, size))
    out = paint_windows((30, 40), np.array([[10.2, 12.7]]), window)
    y0, x0 = 10 - size // 2, 13 - size // 2
    assert np.array_equal(out[y0 : y0 + size, x0 : x0 + size], as_uint8(window[0].transpose(1, 2, 0)))
    rest = np.ones((30, 40), bool)
    rest[y0 : y0 + size, x0 : x0 + size] = False
    assert np.all(out[rest] == 0)


def test_overlaps_average_and_off_canvas_parts_are_clipped():
    windows = np.stack([np.full((3, 6, 6), -1.0), np.full((3, 6, 6), 0.6)])
    background = np.full((20, 20, 3), 7, np.uint8)
    out = paint_windows((20, 20), np.array([[10, 10], [10, 13]]), windows, background)
    assert np.all(out[7:13, 7:10] == 0) and np.all(out[7:13, 13:16] == as_uint8(0.6))
    assert np.all(out[7:13, 10:13] == as_uint8(-0.2))  # mean of -1 and 0.6
    assert np.all(out[:7] == 7) and np.all(out[:, 16:] == 7)
    corner = np.arange(3 * 6 * 6, dtype=float).reshape(1, 3, 6, 6) / 108 * 2 - 1
    clipped = paint_windows((20, 20), np.array([[1, 0]]), corner)
    # Window rows 2..5 and columns 3..5 fall on canvas rows 0..3 and columns 0..2.
    assert np.array_equal(clipped[:4, :3], as_uint8(corner[0, :, 2:, 3:].transpose(1, 2, 0)))
    assert np.all(clipped[4:] == 0) and np.all(clipped[:, 3:] == 0)
    assert np.all(paint_windows((20, 20), np.array([[-50, 5]]), corner) == 0)
    with pytest.raises(InputError, match="windows"):
        paint_windows((20, 20), np.zeros((2, 2)), corner)


def test_pasting_a_real_image_s_own_windows_gives_the_image_back(tile):
    _, image = tile
    rng = np.random.default_rng(1)
    # Points anywhere in the image, borders included: the off-image (reflected) parts of windows are clipped.
    points = rng.uniform(0, image.shape[0] - 1, size=(400, 2))
    windows = gather_windows(image, points, 9).reshape(-1, 3, 9, 9)
    out = paint_windows(image.shape[:2], points, windows)
    covered = paint_windows(image.shape[:2], points, torch.ones_like(windows)).any(axis=2)
    assert covered.mean() > 0.5
    # Overlapping windows cut from one image agree, so their average is the image itself.
    assert np.array_equal(out[covered], image[covered]) and np.all(out[~covered] == 0)


def test_entity_value_map_paints_each_entity_s_value_on_its_pixels(tile):
    region, image = tile
    entities = entities_for(image, float(region.mpp), GraphConfig())
    labels, ids = entities.labels, entities.table["id"]
    values = np.linspace(0.1, 1.0, len(ids)).astype(np.float32)
    values[::3] = np.nan  # e.g. condition nodes, not reconstructed
    kept = np.arange(len(ids)) != 1  # an entity without a node
    heat = entity_value_map(labels, ids[kept], values[kept])
    assert heat.shape == labels.shape and heat.dtype == np.float32
    for i, label in enumerate(ids):
        pixels = heat[labels == label]
        if i == 1 or np.isnan(values[i]):
            assert np.all(np.isnan(pixels))
        else:
            assert np.all(pixels == values[i])
    assert np.all(np.isnan(heat[labels == 0]))


def test_reconstruction_views_align_with_the_image_and_errors_cover_targets(tile):
    region, image = tile
    graph = graph_from_image(image, float(region.mpp), GraphConfig(window=8), region)
    torch.manual_seed(0)
    config = ModelConfig(
        feature_dim=192, embed_dim=32, hidden_dim=16, latent_mlp_dim=8, time_mlp_dim=32, block_mlp_dim=8,
        head_dims=(16, 32),
    )
    model = HMGDM(config)
    clean = reconstruct(model, graph, t=0, seed=3)
    noisy = reconstruct(model, graph, t=999, seed=3)
    target = clean.mask.node_target.numpy()
    assert target.sum() == int(0.6 * graph.num_nodes)
    errors = node_errors(graph.x, clean)
    assert np.all(np.isnan(errors[~target])) and np.all(errors[target] >= 0)
    expected = ((clean.node_predicted - graph.x[clean.mask.node_target]) ** 2).mean(1).numpy()
    assert np.allclose(errors[target], expected)
    views = paint_reconstruction(clean, graph.pos, region, image)
    loud = paint_reconstruction(noisy, graph.pos, region, image)
    centres = region.from_level0(graph.pos.numpy())[target]
    footprint = paint_windows(image.shape[:2], centres, torch.ones(len(centres), 3, 8, 8)).any(axis=2)
    for view in (views.noised, views.reconstructed, loud.noised):
        assert view.shape == image.shape and np.array_equal(view[~footprint], image[~footprint])
    # At t = 0 the noised windows are the clean ones: the view is the image up to float rounding.
    assert np.abs(views.noised.astype(int) - image).max() <= 1
    assert np.abs(loud.noised.astype(int) - image)[footprint].mean() > 5
    assert not np.array_equal(views.reconstructed[footprint], image[footprint])  # an untrained model
    latent = type(clean)(**{**clean.__dict__, "node_windows": None})
    with pytest.raises(InputError, match="VAE"):
        paint_reconstruction(latent, graph.pos, region, image)
    with pytest.raises(InputError, match="VAE"):
        node_window_errors(graph.x, latent)


def test_window_errors_compare_pixels_in_raw_and_vae_modes(tile):
    region, image = tile
    graph = graph_from_image(image, float(region.mpp), GraphConfig(window=8), region)
    torch.manual_seed(0)
    small = {"embed_dim": 32, "hidden_dim": 16, "latent_mlp_dim": 8, "time_mlp_dim": 32, "block_mlp_dim": 8,
             "head_dims": (16, 32)}
    raw = reconstruct(HMGDM(ModelConfig(feature_dim=192, **small)), graph, t=300, seed=1)
    # Raw windows: the pixel error is the feature error.
    np.testing.assert_allclose(node_window_errors(graph.x, raw), node_errors(graph.x, raw), equal_nan=True)
    # VAE latents: the decoded prediction is compared with the entity's own pixels.
    vae = EntityVAE(VAEConfig(window=8, latent_channels=2, base_channels=4)).eval()
    rec_model, latent = HMGDM(ModelConfig(feature_dim=vae.config.latent_dim, **small)), latent_graph(vae, graph)
    rec = reconstruct(rec_model, latent, t=300, seed=1, vae=vae)
    errors = node_window_errors(graph.x, rec)
    target = rec.mask.node_target.numpy()
    decoded = rec.node_windows[1].flatten(1)
    expected = ((decoded - graph.x[rec.mask.node_target]) ** 2).mean(1).numpy()
    assert np.all(np.isnan(errors[~target])) and np.allclose(errors[target], expected)
    assert decoded.shape[1] == graph.x.shape[1] != rec.node_predicted.shape[1]
    assert rec.edge_windows[1].shape == (int(rec.mask.edge_target.sum()), 3, 8, 8)
    nodes_only = reconstruct(rec_model, latent, t=300, seed=1, vae=vae, decode_edges=False)
    assert nodes_only.edge_windows is None and torch.equal(nodes_only.node_windows[1], rec.node_windows[1])
