"""Viewer fixtures: the sample slide opened through the plugin and a rectangle drawn on tissue."""

import numpy as np
import pytest

from hmgdm_core.graph import GraphConfig, dataset_from_region
from hmgdm_core.io import Region, open_slide
from hmgdm_core.model.config import ModelConfig
from hmgdm_core.train import CancelToken, Finished, PretrainConfig, TrainConfig, drain, pretrain
from hmgdm_core.vae import VAEConfig
from napari_hmgdm._train_job import TrainRequest, train_job

MPP = 0.499
# Level-0 (y, x, height, width) of a box over the epidermis of the sample slide.
BOX = (1500, 800, 512, 512)
# A network small enough for the viewer tests' few pre-training steps.
SMALL_MODEL = ModelConfig(embed_dim=32, hidden_dim=16, latent_mlp_dim=8, time_mlp_dim=32, block_mlp_dim=16)


@pytest.fixture
def roi_box():
    """``((y, x, height, width) in level-0 px, level-0 µm/px)`` of the drawn rectangle."""
    return BOX, MPP


@pytest.fixture
def slide_viewer(make_napari_viewer, sample_svs):
    """A shown viewer with the sample slide and a Shapes layer holding one rectangle (world µm)."""
    viewer = make_napari_viewer(show=True)
    (image,) = viewer.open(str(sample_svs), plugin="napari-hmgdm")
    y, x, h, w = BOX
    # Level-0 pixel centres sit at index * mpp in world units; the rectangle hugs the pixels' outer edges.
    corners = np.array([[y - 0.5, x - 0.5], [y + h - 0.5, x + w - 0.5]]) * MPP
    shapes = viewer.add_shapes(
        [corners], shape_type="rectangle", name="roi", edge_color="cyan", face_color="transparent", units=("µm", "µm")
    )
    return viewer, image, shapes


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory, sample_svs):
    """A tiny model after two pre-training steps on the sample slide."""
    out = tmp_path_factory.mktemp("run")
    slide = open_slide(sample_svs)
    region = Region(1400, 700, 512, 512, 0.499, 1.0)
    graphs = dataset_from_region(slide.read(region), region, 64, GraphConfig())
    config = PretrainConfig(model=SMALL_MODEL, train=TrainConfig(batch_size=4, max_steps=2, device="cpu"))
    return drain(pretrain(graphs, config, out)).checkpoint


@pytest.fixture(scope="session")
def latent_checkpoint(tmp_path_factory, sample_svs):
    """A tiny model pre-trained for two steps on entity-VAE latents through the training job (vae.pt beside it)."""
    vae = VAEConfig(latent_channels=2, base_channels=8, batch_size=16, steps=3)
    request = TrainRequest(
        str(sample_svs), MPP, Region(1400, 700, 384, 384, MPP, 1.0), 64, GraphConfig(window=vae.window),
        PretrainConfig(model=SMALL_MODEL, train=TrainConfig(batch_size=4, max_steps=2, device="cpu")),
        tmp_path_factory.mktemp("latent-run"), vae_config=vae,
    )
    items = list(train_job(request, CancelToken(), min_interval_s=0.0))
    (finished,) = [item for item in items if isinstance(item, Finished)]
    return finished.checkpoint, items
