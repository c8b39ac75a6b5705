import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from hmgdm_core.diffusion import DiffusionConfig, NoiseSchedule
from hmgdm_core.errors import InputError
from hmgdm_core.graph import GraphConfig
from hmgdm_core.graph.build import entities_for
from hmgdm_core.io import Region, open_slide
from hmgdm_core.masking import MaskConfig, sample_mask
from hmgdm_core.model import ModelConfig
from hmgdm_core.overlays import CONDITION, HIDDEN, TARGET, MaskScheduleRecorder, edge_vectors, label_roles, mask_roles
from hmgdm_core.train import MaskDrawn, PretrainConfig, TrainConfig, pretrain

SMALL = ModelConfig(
    feature_dim=192, embed_dim=32, hidden_dim=16, latent_mlp_dim=8, time_mlp_dim=32, block_mlp_dim=8, head_dims=(16, 32)
)


@pytest.fixture(scope="module")
def graphs(small_patch_graphs):
    return small_patch_graphs


@pytest.fixture(scope="module")
def mask_events(graphs, tmp_path_factory):
    config = PretrainConfig(
        model=SMALL, mask=MaskConfig(mode="strict"), train=TrainConfig(batch_size=4, epochs=3, device="cpu")
    )
    events = pretrain(graphs, config, tmp_path_factory.mktemp("run"))
    return [e for e in events if isinstance(e, MaskDrawn)]


def test_mask_events_carry_timesteps_and_encoder_inputs(graphs, mask_events):
    assert len(mask_events) == 3
    for event in mask_events:
        assert sorted(event.dataset_indices) == [0, 1, 2, 3] and event.t.shape == (4,)
        # Antithetic draws: the 4th graph takes T-1-t of the 1st (DiffusionConfig().num_steps = 1000).
        assert event.t[3] == 999 - event.t[0] and np.all((event.t >= 0) & (event.t < 1000))
        sizes = [graphs[i].edge_index.shape[1] for i in event.dataset_indices]
        assert np.array_equal(np.bincount(event.edge_graph, minlength=4), sizes)
        assert np.array_equal(event.node_encoded, ~event.node_target)  # strict mode
        assert not np.any(event.edge_encoded & event.edge_target)


def test_recorder_keeps_one_graph_s_roles_and_noise_levels(graphs, mask_events):
    index = 2
    graph = graphs[index]
    everything = MaskScheduleRecorder(index)
    chosen = MaskScheduleRecorder(index, DiffusionConfig(), steps={1, 3})
    elsewhere = MaskScheduleRecorder(len(graphs) + 5)
    for event in mask_events:
        assert everything.record(event)
        chosen.record(event)
        assert not elsewhere.record(event)
    schedule = everything.schedule()
    n, e = graph.num_nodes, graph.edge_index.shape[1]
    assert schedule.steps.tolist() == [1, 2, 3] and schedule.node_role.shape == (3, n)
    assert schedule.edge_role.shape == (3, e)
    positions = [event.dataset_indices.index(index) for event in mask_events]
    assert schedule.t.tolist() == [int(ev.t[p]) for ev, p in zip(mask_events, positions, strict=True)]
    alpha_bar = NoiseSchedule().alphas_cumprod.double().numpy()[schedule.t]
    assert np.allclose(schedule.alpha_bar, alpha_bar) and np.allclose(schedule.noise_std**2 + alpha_bar, 1)
    assert np.all((schedule.node_role == TARGET).sum(1) == int(0.6 * n))
    assert set(np.unique(schedule.node_role)) <= {CONDITION, TARGET}
    src, dst = graph.edge_index.numpy()
    pair = graph.edge_pair.numpy()
    for node_role, edge_role in zip(schedule.node_role, schedule.edge_role, strict=True):
        touches = (node_role[src] == TARGET) | (node_role[dst] == TARGET)
        assert np.array_equal(edge_role == HIDDEN, (edge_role != TARGET) & touches)
        target_pairs = np.unique(pair[edge_role == TARGET])
        assert np.array_equal(np.sort(pair[edge_role == TARGET]), np.repeat(target_pairs, 2))
    assert not np.array_equal(schedule.node_role[0], schedule.node_role[1])  # re-drawn every step
    picked = chosen.schedule()
    assert picked.steps.tolist() == [1, 3] and np.array_equal(picked.node_role, schedule.node_role[[0, 2]])
    empty = elsewhere.schedule()
    assert empty.steps.shape == (0,) and empty.node_role.shape[0] == 0


@pytest.mark.parametrize("mode", ["strict", "official"])
def test_mask_roles_match_the_split(graphs, mode):
    batch = Batch.from_data_list(graphs[:2])
    generator = torch.Generator().manual_seed(0)
    mask = sample_mask(batch.edge_index, batch.edge_pair, batch.batch, 2, MaskConfig(mode=mode), generator=generator)
    node_role, edge_role = mask_roles(mask)
    assert np.array_equal(node_role == TARGET, mask.node_target.numpy())
    assert np.array_equal(edge_role == TARGET, mask.edge_target.numpy())
    assert np.array_equal(edge_role == CONDITION, mask.edge_context.numpy())
    assert np.any(edge_role == HIDDEN) == (mode == "strict")


def test_edge_vectors_join_source_to_destination(graphs):
    graph = graphs[0]
    vectors = edge_vectors(graph.pos, graph.edge_index)
    src, dst = graph.edge_index
    assert vectors.shape == (graph.edge_index.shape[1], 2, 2)
    assert np.allclose(vectors[:, 0], graph.pos[src].numpy())
    assert np.allclose(vectors[:, 0] + vectors[:, 1], graph.pos[dst].numpy())


def test_label_roles_paint_each_entity_with_its_step_role(sample_svs, graphs, mask_events):
    # The first patch's own label image: dataset_from_region builds patch 0 from the top-left 80² pixels.
    with open_slide(sample_svs) as slide:
        region = Region(1200, 900, 320, 320, slide.mpp, 2 * slide.mpp)
        labels = entities_for(slide.read(region)[:80, :80], float(region.mpp), GraphConfig(window=8)).labels
    recorder = MaskScheduleRecorder(0)
    for event in mask_events:
        recorder.record(event)
    schedule = recorder.schedule()
    graph = graphs[0]
    entity_id = graph.entity_id.numpy()
    lookup = label_roles(schedule.node_role, entity_id, int(labels.max()) + 1)
    assert lookup.shape == (3, labels.max() + 1) and lookup.dtype == np.uint8
    for step, node_role in enumerate(schedule.node_role):
        image = lookup[step][labels]
        assert np.all(image[labels == 0] == 0)
        for node in range(graph.num_nodes):
            assert np.all(image[labels == entity_id[node]] == node_role[node] + 1)
    # Labels without a node stay background.
    unused = np.setdiff1d(np.arange(1, labels.max() + 1), entity_id)
    assert np.all(lookup[:, unused] == 0)
    with pytest.raises(InputError):
        label_roles(schedule.node_role, entity_id, int(entity_id.max()))
