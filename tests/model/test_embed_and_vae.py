import numpy as np
import pytest
import torch
from model_graphs import monuseg_graphs, random_graph
from torch_geometric.data import Batch

from hmgdm_core.embed import DEFAULT_READOUT, embed_dataset, embed_graph, patch_width, reconstruct
from hmgdm_core.errors import InputError
from hmgdm_core.masking import MaskConfig, no_mask
from hmgdm_core.model import HMGDM, ModelConfig
from hmgdm_core.vae import EntityVAE, VAEConfig, VAEFinished, VAEStep, fit_entity_vae, latent_graph, load_entity_vae


def test_embedding_is_deterministic_batch_independent_and_documented(tiny_config):
    torch.manual_seed(0)
    model = HMGDM(tiny_config)
    graphs = [random_graph(7, 48, seed=1), random_graph(1, 48, seed=2), random_graph(4, 48, k=0, seed=3)]
    single = embed_graph(model, graphs[0], readout="mu")
    assert single.node.shape == (7, 16) and single.edge.shape == (graphs[0].num_edges, 16)
    expected = torch.cat(
        [single.node.mean(0), single.node.max(0).values, single.edge.mean(0), single.edge.max(0).values]
    )
    assert torch.allclose(single.patch, expected)
    assert torch.equal(embed_graph(model, graphs[0], readout="mu").patch, single.patch)  # μ, no sampling
    together = embed_dataset(model, graphs, batch_size=2, device="cpu", entities=True, readout="mu")
    assert together.patch.shape == (3, 64) and together.patch.dtype == np.float32
    assert np.allclose(together.patch[0], single.patch.numpy(), atol=1e-5)
    assert [n.shape[0] for n in together.node] == [7, 1, 4]
    assert [e.shape[0] for e in together.edge] == [g.num_edges for g in graphs]
    assert np.all(together.patch[2, 32:] == 0)  # an edgeless graph has zero edge halves


@pytest.mark.parametrize(("readout", "layer"), [("first", 0), ("states", -1)])
def test_layer_readouts_pool_that_layers_states_and_keep_the_entity_latents(tiny_config, readout, layer):
    torch.manual_seed(0)
    model = HMGDM(tiny_config).eval()
    graphs = [random_graph(7, 48, seed=1), random_graph(5, 48, seed=2)]
    pooled = embed_graph(model, graphs[0], readout=readout)
    with torch.no_grad():
        encoded = model.encode(Batch.from_data_list([graphs[0]]), no_mask(7, graphs[0].num_edges))
    node, edge = encoded.node_skips[layer], encoded.edge_skips[layer]
    expected = torch.cat([node.mean(0), node.max(0).values, edge.mean(0), edge.max(0).values])
    assert torch.allclose(pooled.patch, expected, atol=1e-6)
    assert not torch.allclose(pooled.patch, embed_graph(model, graphs[0], readout="mu").patch)
    assert torch.equal(pooled.node, embed_graph(model, graphs[0], readout="mu").node)  # entity rows stay μ
    together = embed_dataset(model, graphs, batch_size=2, device="cpu", readout=readout)
    assert np.allclose(together.patch[0], pooled.patch.numpy(), atol=1e-5)
    with pytest.raises(InputError, match="readout"):
        embed_graph(model, graphs[0], readout="hidden")
    with pytest.raises(InputError, match="readout"):
        embed_dataset(model, graphs, readout="z")


def test_default_readout_pools_each_entitys_own_first_projection(tiny_config):
    """The default patch vector is [mean, std, max] of ReLU(Θ₀ h) over the nodes, then over the edges: the first
    layer's projection of each entity alone. The first layer's propagation and bias, the later layers and the
    Gaussian heads do not move it; Θ₀ does."""
    torch.manual_seed(0)
    model = HMGDM(tiny_config).eval()
    graphs = [random_graph(7, 48, seed=1), random_graph(5, 48, seed=2)]
    before = embed_dataset(model, graphs, device="cpu").patch
    assert DEFAULT_READOUT == "projection" and before.shape == (2, patch_width("projection", 16)) == (2, 96)
    assert np.array_equal(before, embed_dataset(model, graphs, device="cpu", readout="projection").patch)
    encoder = model.encoder
    with torch.no_grad():
        graph = graphs[0]
        h_node, h_edge = model.embed_inputs(Batch.from_data_list([graph]), graph.x, graph.edge_attr, standardise=True)
        rows = (
            torch.relu(encoder.node_convs[0].lin(encoder.pre_node(h_node))),
            torch.relu(encoder.edge_convs[0].lin(encoder.pre_edge(h_edge))),
        )
    expected = torch.cat([torch.cat([r.mean(0), r.std(0, unbiased=False), r.max(0).values]) for r in rows])
    assert np.allclose(before[0], expected.numpy(), atol=1e-5)
    mu_before = embed_dataset(model, graphs, device="cpu", readout="mu").patch
    with torch.no_grad():
        later = [*encoder.node_convs[1:], *encoder.edge_convs[1:], *encoder.weight_convs]
        biases = [encoder.node_convs[0].bias, encoder.edge_convs[0].bias]
        for parameter in [*biases, *(p for m in [*later, encoder.node_mu, encoder.edge_mu] for p in m.parameters())]:
            parameter.add_(torch.randn_like(parameter))
    assert np.allclose(embed_dataset(model, graphs, device="cpu").patch, before, atol=1e-6)
    assert not np.allclose(embed_dataset(model, graphs, device="cpu", readout="mu").patch, mu_before, atol=1e-3)
    with torch.no_grad():
        encoder.node_convs[0].lin.weight.add_(torch.randn_like(encoder.node_convs[0].lin.weight))
    assert not np.allclose(embed_dataset(model, graphs, device="cpu").patch, before, atol=1e-3)


def test_reconstruction_returns_targets_and_windows_for_raw_features():
    torch.manual_seed(0)
    config = ModelConfig(
        feature_dim=3 * 8 * 8,
        embed_dim=32,
        hidden_dim=16,
        latent_mlp_dim=8,
        time_mlp_dim=32,
        block_mlp_dim=8,
        head_dims=(16, 32),
    )
    model = HMGDM(config)
    graph = random_graph(10, 192, seed=4)
    low, high = reconstruct(model, graph, t=10, seed=1), reconstruct(model, graph, t=999, seed=1)
    assert torch.equal(low.mask.node_target, high.mask.node_target)
    n_t = int(low.mask.node_target.sum())
    assert low.node_predicted.shape == (n_t, 192) and low.node_windows[0].shape == (n_t, 3, 8, 8)
    clean = graph.x[low.mask.node_target]
    # More noise at larger t.
    assert (high.node_noised - clean).abs().mean() > (low.node_noised - clean).abs().mean()


def test_entity_vae_learns_real_windows_and_maps_graphs(monuseg_dir, tmp_path):
    graphs = monuseg_graphs(monuseg_dir, count=2, nodes=12)
    config = VAEConfig(base_channels=8, batch_size=32, steps=30, lr=3e-3)
    events = list(fit_entity_vae(graphs, tmp_path / "vae.pt", config))
    steps = [e for e in events if isinstance(e, VAEStep)]
    assert isinstance(events[-1], VAEFinished) and len(steps) == 30
    assert np.mean([s.l1 for s in steps[-5:]]) < 0.8 * np.mean([s.l1 for s in steps[:3]])
    vae = load_entity_vae(events[-1].path)
    latent = latent_graph(vae, graphs[0])
    assert latent.x.shape == (12, 3072) and latent.edge_attr.shape == (graphs[0].num_edges, 3072)
    assert torch.equal(latent.edge_index, graphs[0].edge_index)
    assert vae.decode_features(latent.x).shape == (12, 3, 32, 32)


def test_vae_cancel_and_bad_settings(tmp_path):
    graphs = [random_graph(3, 3 * 32 * 32, seed=0)]
    events = list(
        fit_entity_vae(
            graphs, tmp_path / "v.pt", VAEConfig(base_channels=8, steps=50, batch_size=4), cancelled=lambda: True
        )
    )
    assert events == [VAEFinished(0, tmp_path / "v.pt")]
    with pytest.raises(InputError, match="power of two"):
        EntityVAE(VAEConfig(downsample=3))
    # Settings from a JSON file (`hmgdm pretrain --vae-config`, the widget's saved settings) are checked on entry.
    for bad, field in (({"steps": "many"}, "steps"), ({"lr": 0.0}, "lr"), ({"window": 0}, "window"),
                       ({"kl_weight": -1e-6}, "kl_weight"), ({"batch_size": True}, "batch_size")):  # fmt: skip
        with pytest.raises(InputError, match=f"VAEConfig.{field}"):
            VAEConfig(**bad)
    with pytest.raises(InputError, match="window"):
        EntityVAE().encode_features(torch.zeros(1, 48))


def test_pretraining_on_latent_graphs_uses_the_same_interface(tiny_config):
    vae = EntityVAE(VAEConfig(window=8, downsample=2, latent_channels=3, base_channels=8)).eval()
    graph = latent_graph(vae, random_graph(6, 3 * 8 * 8, seed=2))
    assert graph.x.shape == (6, 3 * 4 * 4)
    from dataclasses import replace

    model = HMGDM(replace(tiny_config, feature_dim=48))
    result = reconstruct(model, graph, t=500, mask_config=MaskConfig(), vae=vae)
    assert result.node_windows[1].shape[1:] == (3, 8, 8)
