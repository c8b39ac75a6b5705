"""The widgets' jobs, driven directly (no Qt): progress, tiled regions, abandoning a build."""

import math
import shutil
import threading
from dataclasses import replace

import numpy as np
import pytest
import torch

from hmgdm_core.downstream import FinetuneConfig, pooled_measurements
from hmgdm_core.errors import InputError, NoTissueError
from hmgdm_core.graph import GraphConfig, GraphDataset, dataset_from_region, graph_from_image, validate_graph
from hmgdm_core.io import Region, open_slide
from hmgdm_core.model import ModelConfig
from hmgdm_core.train import CancelToken, PretrainConfig, TrainConfig, load_checkpoint
from hmgdm_core.vae import VAEFinished, VAEStep, load_entity_vae, model_inputs
from napari_hmgdm._attention_job import AttentionRequest, attention_job
from napari_hmgdm._train_job import FollowedLabels, TrainRequest, train_job
from napari_hmgdm._workers import GraphRequest, PatchRequest, graph_job, patch_embedding_job


def _drain(gen):
    updates = []
    try:
        while True:
            updates.append(next(gen))
    except StopIteration as stop:
        return updates, stop.value


@pytest.fixture
def request_for(sample_svs):
    def make(h, w, polygon=None):
        return GraphRequest(str(sample_svs), 0.499, Region(1400, 700, h, w, 0.499, 0.5), polygon,
                            GraphConfig(kind="nuclei"))
    return make


def test_one_piece_region_reports_three_stages(request_for):
    request = request_for(256, 256)
    updates, result = _drain(graph_job(request))
    assert [u[0] for u in updates] == ["reading", "entities", "graph"]
    validate_graph(result.graph)
    assert result.labels is not None and result.labels.shape == request.region.shape


def test_large_region_is_built_tile_by_tile_with_progress(request_for):
    request = request_for(1024, 1024)
    updates, result = _drain(graph_job(request, tile_size=256))
    tiles = [u for u in updates if u[0] == "tiles"]
    rows, cols = request.region.shape  # 1022² read px: 4 x 4 tiles of 256, two passes each
    assert tiles[-1][1] == tiles[-1][2] == 2 * math.ceil(rows / 256) * math.ceil(cols / 256)
    assert result.labels is None
    validate_graph(result.graph)
    assert result.graph.num_nodes > 50


def test_polygon_applies_to_tiled_regions(request_for):
    triangle = np.array([[1400, 700], [2424, 700], [2424, 1724]], dtype=float)
    _, result = _drain(graph_job(request_for(1024, 1024, triangle), tile_size=256))
    rel = result.graph.pos.numpy() - [1400, 700]
    assert (rel[:, 1] <= rel[:, 0] + 1).all()


def test_closing_the_job_stops_the_tile_thread(request_for):
    gen = graph_job(request_for(1024, 1024), tile_size=256)
    next(gen)
    gen.close()  # what the worker's quit() does at a yield
    assert not any(t.name == "hmgdm-tiles" for t in threading.enumerate())


def test_training_on_vae_latents_saves_the_vae_beside_the_checkpoints(latent_checkpoint):
    path, items = latent_checkpoint
    vae_steps = [e for item in items if isinstance(item, list) for e in item if isinstance(e, VAEStep)]
    (done,) = [item for item in items if isinstance(item, VAEFinished)]
    assert [e.step for e in vae_steps] == [1, 2, 3] and done.step == 3
    assert done.path == path.parent / "vae.pt"
    # The VAE is fitted after the graphs are built and before pre-training starts.
    kinds = [type(item).__name__ if not isinstance(item, str) else item for item in items]
    assert kinds.index("GraphDataset") < kinds.index("vae") < kinds.index("VAEFinished") < kinds.index("Started")
    vae = load_entity_vae(done.path)
    assert load_checkpoint(path).config.model.feature_dim == vae.config.latent_dim == 512
    inputs = model_inputs(512, path)
    assert inputs.mode == "entity VAE" and inputs.window == 32
    (labels,) = [item for item in items if isinstance(item, FollowedLabels)]
    (dataset,) = [item for item in items if isinstance(item, GraphDataset)]
    assert labels.dataset_index == 0 and labels.labels.shape == (64, 64)
    assert set(dataset[0].entity_id.tolist()) <= set(np.unique(labels.labels).tolist())


def test_glass_patches_are_left_out_and_the_schedule_follows_the_first_kept_one(sample_svs, tmp_path):
    # This strip at 2 µm/px cuts into six 64² patches, the first and fourth of bare glass (0 entities).
    with open_slide(sample_svs) as slide:
        mpp = slide.mpp
    region = Region(0, 512, 512, 1024, mpp, 2.0)
    tiny = ModelConfig(embed_dim=32, hidden_dim=16, latent_mlp_dim=8, time_mlp_dim=32, block_mlp_dim=16)
    config = PretrainConfig(model=tiny, train=TrainConfig(batch_size=2, max_steps=1, device="cpu"))
    request = TrainRequest(str(sample_svs), mpp, region, 64, GraphConfig(), config, tmp_path)
    items = list(train_job(request, CancelToken(), min_interval_s=0.0))
    (dataset,) = [item for item in items if isinstance(item, GraphDataset)]
    (labels,) = [item for item in items if isinstance(item, FollowedLabels)]
    with open_slide(sample_svs) as slide:
        grid = dataset_from_region(slide.read(region), region, 64, GraphConfig())
    kept = [g for g in grid if g.num_nodes >= 2]
    assert 0 < len(dataset) == len(kept) < len(grid) and grid[0].num_nodes < 2
    assert all(torch.equal(a.pos, b.pos) for a, b in zip(dataset, kept, strict=True))
    # The followed labels are those of the first kept patch: every entity of graph 0 is in them.
    assert set(dataset[0].entity_id.tolist()) <= set(np.unique(labels.labels).tolist()) - {0}
    glass = TrainRequest(str(sample_svs), mpp, Region(1400, 0, 512, 1024, mpp, 2.0), 64, GraphConfig(), config,
                         tmp_path / "glass")
    with pytest.raises(NoTissueError, match="two entities"):
        list(train_job(glass, CancelToken(), min_interval_s=0.0))


def test_the_feature_mode_follows_the_checkpoint(latent_checkpoint, checkpoint, tmp_path):
    latent, _ = latent_checkpoint
    raw = model_inputs(3072, checkpoint)
    assert raw.mode == "raw windows" and raw.window == 32 and raw.vae is None
    alone = tmp_path / "latent.pt"
    shutil.copyfile(latent, alone)
    with pytest.raises(InputError, match="no vae.pt lies beside it"):
        model_inputs(512, alone)
    assert model_inputs(512, alone, latent.parent / "vae.pt").mode == "entity VAE"
    with pytest.raises(InputError, match="same training run"):
        model_inputs(3072, checkpoint, latent.parent / "vae.pt")


def test_fine_tuning_stops_after_the_epoch_it_was_cancelled_in(checkpoint, sample_svs):
    with open_slide(sample_svs) as slide:
        region = Region(1500, 800, 256, 256, 0.499, 1.0)
        dataset = dataset_from_region(slide.read(region), region, 64, GraphConfig())
    graphs = [dataset[i] for i in range(len(dataset))]
    token = CancelToken()
    token.cancel()
    config = FinetuneConfig(epochs=5, batch_size=4)
    request = AttentionRequest(checkpoint, None, graphs, np.arange(4), np.array([0, 1, 0, 1]), 2, config)
    updates, result = _drain(attention_job(request, token))
    assert [u[0] for u in updates] == [0, 1] and result.epochs == 1
    assert result.probabilities.shape == (len(graphs), 2) and len(result.points.pos) == sum(g.num_nodes for g in graphs)
    one_class = AttentionRequest(checkpoint, None, graphs, np.arange(2), np.array([1, 1]), 2, config)
    with pytest.raises(InputError, match="at least two classes"):
        next(attention_job(one_class, CancelToken()))


def test_patch_vectors_hold_the_embedding_and_the_measurements_of_each_kind_asked_for(checkpoint, sample_svs):
    region = Region(1400, 700, 512, 512, 0.499, 0.5)
    request = PatchRequest(str(sample_svs), 0.499, region, 128, GraphConfig(), checkpoint, measurements=())
    plain = _drain(patch_embedding_job(request))[1]
    width = plain.embeddings.shape[1]
    assert plain.measurement_columns == 0
    # Nuclei first: the order asked for is the order of the columns.
    result = _drain(patch_embedding_job(replace(request, measurements=("nuclei", "tissue"))))[1]
    np.testing.assert_array_equal(result.embeddings[:, :width], plain.embeddings)
    with open_slide(sample_svs, mpp=0.499) as slide:
        image = slide.read(region)
    nuclei = [
        graph_from_image(patch, 0.5, GraphConfig(kind="nuclei"), sub)
        for patch, sub in zip(result.grid.cut(image), result.grid.regions(), strict=True)
    ]
    assert len(nuclei) == 9 and sum(g.num_nodes > 0 for g in nuclei) >= 5  # 511² read px: 3 x 3 patches
    expected = np.hstack([pooled_measurements(nuclei), pooled_measurements(result.graphs)])
    assert result.measurement_columns == expected.shape[1] == 14 + 16
    np.testing.assert_allclose(result.embeddings[:, width:], expected, rtol=1e-6)
    alone = _drain(patch_embedding_job(replace(request, measurements=("nuclei", "tissue"), embedding=False)))[1]
    np.testing.assert_array_equal(alone.embeddings, result.embeddings[:, width:])
    assert alone.measurement_columns == 30
    for kinds in (("tissue", "tissue"), ("cells",)):
        with pytest.raises(InputError, match="distinct entity kinds"):
            replace(request, measurements=kinds)
    with pytest.raises(InputError, match="without the embedding"):
        replace(request, embedding=False)
