from dataclasses import replace

import pytest
import torch
from model_graphs import monuseg_graphs, random_graph
from torch_geometric.data import Batch

from hmgdm_core.diffusion import NoiseSchedule
from hmgdm_core.errors import InputError
from hmgdm_core.masking import MaskConfig, no_mask
from hmgdm_core.model import HMGDM, LossWeights, ModelConfig, draw_mask, draw_noise, pretraining_loss
from hmgdm_core.model.edge_pairs import pair_rows
from hmgdm_core.model.loss import noised_inputs


def generators(batch, seed=0):
    return [torch.Generator().manual_seed(seed * 100 + i) for i in range(batch.num_graphs)]


def draws(batch, mode="strict", seed=0, hidden=16, paired=True):
    gens = generators(batch, seed)
    mask = draw_mask(batch, MaskConfig(mode=mode), gens)
    noise = draw_noise(batch, mask, batch.x.shape[1], hidden, gens, paired=paired)
    t = NoiseSchedule().sample_timesteps(batch.num_graphs, torch.Generator().manual_seed(seed))
    return mask, t, noise


def masked_inputs(batch, mode="strict", seed=0):
    mask, t, noise = draws(batch, mode, seed)
    x_t, e_t = noised_inputs(batch, mask, t, NoiseSchedule(), noise)
    return mask, t, x_t, e_t


def test_strict_encoder_never_sees_a_target_node(tiny_config):
    torch.manual_seed(0)
    model = HMGDM(tiny_config).eval()
    batch = Batch.from_data_list([random_graph(12, 48, seed=1)])
    mask, t, x_t, e_t = masked_inputs(batch)
    target = int(mask.node_target.nonzero()[0])
    changed = x_t.clone()
    changed[target] += 5.0
    before = model(batch, x_t, e_t, mask, t).encoded
    after = model(batch, changed, e_t, mask, t).encoded
    for a, b in zip(
        (before.node_mu, before.node_logvar, before.edge_mu, *before.node_skips, *before.edge_skips),
        (after.node_mu, after.node_logvar, after.edge_mu, *after.node_skips, *after.edge_skips),
        strict=True,
    ):
        assert torch.equal(a, b)
    # The released masking does leak: the encoder reads the clean target feature.
    mask, t, x_t, e_t = masked_inputs(batch, mode="official")
    target = int(mask.node_target.nonzero()[0])
    leaky = batch.clone()
    leaky.x = batch.x.clone()
    leaky.x[target] += 5.0
    assert not torch.equal(
        model(batch, x_t, e_t, mask, t).encoded.node_mu, model(leaky, x_t, e_t, mask, t).encoded.node_mu
    )


def test_attention_never_crosses_graphs(tiny_config):
    torch.manual_seed(0)
    model = HMGDM(replace(tiny_config, index_rope=True, pair_tokens=False)).eval()
    batch = Batch.from_data_list([random_graph(9, 48, seed=1), random_graph(14, 48, seed=2)])
    mask, t, x_t, e_t = masked_inputs(batch)
    reference = model(batch, x_t, e_t, mask, t)
    in_b = batch.batch == 1
    edge_in_b = in_b[batch.edge_index[0]]
    x_b, e_b = x_t.clone(), e_t.clone()
    x_b[in_b] = torch.randn(int(in_b.sum()), 48)
    e_b[edge_in_b] = torch.randn(int(edge_in_b.sum()), 48)
    t_b = t.clone()
    t_b[1] = 999 - t[1]
    perturbed = model(batch, x_b, e_b, mask, t_b)
    node_a = ~in_b[mask.node_target]
    edge_a = ~edge_in_b[mask.edge_target]
    assert node_a.any() and edge_a.any()
    assert torch.allclose(reference.node[node_a], perturbed.node[node_a], atol=1e-6)
    assert torch.allclose(reference.edge[edge_a], perturbed.edge[edge_a], atol=1e-6)
    assert not torch.allclose(reference.node[~node_a], perturbed.node[~node_a])


@pytest.mark.parametrize("mode", ["strict", "official"])
def test_single_node_and_edgeless_graphs_train(tiny_config, mode):
    model = HMGDM(tiny_config)
    singles = [random_graph(1, 48, seed=1), random_graph(1, 48, seed=2)]
    edgeless = random_graph(3, 48, k=0, seed=3)
    empty = random_graph(0, 48, seed=5)  # a background patch can hold no entity at all
    for graphs in (singles, [edgeless], [empty], [*singles, edgeless, empty, random_graph(6, 48, seed=4)]):
        batch = Batch.from_data_list(graphs)
        mask, t, noise = draws(batch, mode)
        loss = pretraining_loss(model, NoiseSchedule(), batch, mask, t, noise, LossWeights())
        assert torch.isfinite(loss.total)
        loss.total.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_live_parameter_count_matches_the_released_model():
    from hmgdm_core.train import PretrainConfig

    model = HMGDM(PretrainConfig.preset("paper").model)
    blocks = {name: sum(p.numel() for p in child.parameters()) for name, child in model.named_children()}
    assert blocks["node_embedding"] == blocks["edge_embedding"] == 1_579_520
    assert blocks["encoder"] == 1_447_170
    decoder = {name: sum(p.numel() for p in child.parameters()) for name, child in model.decoder.named_children()}
    assert decoder["time_embedding"] == 1_575_168
    assert decoder["node_joint"] == decoder["edge_joint"] == 790_528
    assert decoder["node_head"] == decoder["edge_head"] == 1_773_312
    assert decoder["node_tokens"] == 197_120
    # Released decode block: 1,317,888, of which the 1-layer EHGNN's four unused Gaussian heads are 395,520.
    assert decoder["blocks"] == 2 * (1_317_888 - 395_520)
    # Released total 14,504,451 minus its dead modules: the decode blocks' heads, grad_dist_mlp, two LayerNorms.
    assert sum(p.numel() for p in model.parameters()) == 14_504_451 - 2 * 395_520 - 164_353 - 1_024


def test_centroid_encoding_changes_the_embedding_but_adds_no_parameter(tiny_config):
    with_pos = HMGDM(replace(tiny_config, centroid_encoding=True, index_rope=False))
    plain = HMGDM(replace(tiny_config, index_rope=False))
    assert sum(p.numel() for p in with_pos.parameters()) == sum(p.numel() for p in plain.parameters())
    plain.load_state_dict(with_pos.state_dict())
    graph = random_graph(5, 48)
    h_pos, _ = with_pos.embed_inputs(graph, graph.x, graph.edge_attr)
    h_plain, _ = plain.embed_inputs(graph, graph.x, graph.edge_attr)
    assert not torch.allclose(h_pos, h_plain)


def test_loss_falls_when_overfitting_real_graphs(monuseg_dir):
    torch.manual_seed(0)
    batch = Batch.from_data_list(monuseg_graphs(monuseg_dir, count=3, nodes=16))
    config = ModelConfig(
        embed_dim=64, hidden_dim=32, latent_mlp_dim=16, time_mlp_dim=64, block_mlp_dim=16, head_dims=(64, 128)
    )
    model, schedule = HMGDM(config), NoiseSchedule()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3, betas=(0.95, 0.999))
    losses = []
    for step in range(40):
        mask, t, noise = draws(batch, seed=step, hidden=32)
        loss = pretraining_loss(model, schedule, batch, mask, t, noise, LossWeights(kl=1e-3))
        optimizer.zero_grad()
        loss.total.backward()
        optimizer.step()
        losses.append(float(loss.node.detach() + loss.edge.detach()))
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:3]) / 3


def test_index_rope_rotates_pairs_and_keeps_norms(tiny_config):
    embedding = HMGDM(tiny_config).node_embedding
    x = torch.randn(4, 48)
    rotated = embedding._rotate(x, torch.tensor([0, 1, 2, 3]))
    assert torch.allclose(rotated[0], x[0])
    pair_norms = lambda v: v.reshape(4, -1, 2).norm(dim=-1)  # noqa: E731
    assert torch.allclose(pair_norms(rotated), pair_norms(x), atol=1e-5)
    assert not torch.allclose(rotated[1:], x[1:])


def test_context_encoder_sees_the_whole_graph_but_no_target_feature(tiny_config):
    torch.manual_seed(0)
    model = HMGDM(replace(tiny_config, encoder_mask_token=True)).eval()
    batch = Batch.from_data_list([random_graph(12, 48, seed=1), random_graph(9, 48, seed=2)])
    mask, t, x_t, e_t = masked_inputs(batch, mode="context")
    # Every node and edge enters the encoder (the embedding pass's graph), targets included.
    assert bool(mask.node_encoded.all()) and bool(mask.edge_encoded.all()) and bool(mask.node_target.any())
    changed_x, changed_e = x_t.clone(), e_t.clone()
    changed_x[mask.node_target] += 5.0
    changed_e[mask.edge_target] -= 3.0
    leaky = batch.clone()
    leaky.x, leaky.edge_attr = batch.x.clone(), batch.edge_attr.clone()
    leaky.x[mask.node_target] += 7.0
    leaky.edge_attr[mask.edge_target] += 7.0
    before = model(batch, x_t, e_t, mask, t).encoded
    for after in (model(batch, changed_x, changed_e, mask, t).encoded, model(leaky, x_t, e_t, mask, t).encoded):
        for a, b in zip(
            (before.node_mu, before.node_logvar, before.edge_mu, *before.node_skips, *before.edge_skips),
            (after.node_mu, after.node_logvar, after.edge_mu, *after.node_skips, *after.edge_skips),
            strict=True,
        ):
            assert torch.equal(a, b)
    # A condition node's features do reach the encoder.
    condition = int((~mask.node_target).nonzero()[0])
    changed_x = x_t.clone()
    changed_x[condition] += 5.0
    assert not torch.equal(before.node_mu, model(batch, changed_x, e_t, mask, t).encoded.node_mu)
    with pytest.raises(InputError, match="encoder_mask_token"):
        HMGDM(replace(tiny_config, encoder_mask_token=False))(batch, x_t, e_t, mask, t)


def test_context_training_graph_has_the_embedding_degree_distribution():
    batch = Batch.from_data_list([random_graph(12, 48, seed=s) for s in range(3)])
    embed_degree = torch.bincount(batch.edge_index[0], minlength=batch.num_nodes)
    for seed in range(5):
        mask = draws(batch, mode="context", seed=seed)[0]
        seen = batch.edge_index[:, mask.edge_encoded]
        kept = mask.node_encoded
        assert torch.equal(torch.bincount(seen[0], minlength=batch.num_nodes)[kept], embed_degree[kept])
        # strict, for contrast, trains on a much sparser graph
        strict = draws(batch, mode="strict", seed=seed)[0]
        assert int(strict.edge_encoded.sum()) < int(mask.edge_encoded.sum())


def test_standardisation_is_fitted_stored_and_applied(tiny_config, tmp_path):
    from hmgdm_core.embed import embed_graph
    from hmgdm_core.train import PretrainConfig, TrainConfig, load_checkpoint, pretrain

    graphs = [random_graph(10, 48, seed=s) for s in range(4)]
    for g in graphs:
        g.x = 3.0 * g.x + 2.0  # far from zero mean, unit variance
    model_config = replace(tiny_config, standardise_inputs=True, input_layernorm=False)
    config = PretrainConfig(model=model_config, train=TrainConfig(batch_size=2, max_steps=2, device="cpu"))
    list(pretrain(graphs, config, tmp_path))
    model = load_checkpoint(tmp_path).model
    nodes = torch.cat([g.x for g in graphs])
    torch.testing.assert_close(model.node_mean, nodes.mean(0), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(model.node_std, nodes.std(0, unbiased=False), atol=1e-4, rtol=1e-4)
    # Embedding with the loaded checkpoint equals embedding the manually standardised graph without statistics.
    plain = HMGDM(replace(model_config, standardise_inputs=False)).eval()
    state = {k: v for k, v in model.state_dict().items() if not k.endswith(("_mean", "_std"))}
    plain.load_state_dict(state)
    manual = graphs[0].clone()
    manual.x = (graphs[0].x - model.node_mean) / model.node_std
    manual.edge_attr = (graphs[0].edge_attr - model.edge_mean) / model.edge_std
    torch.testing.assert_close(embed_graph(model, graphs[0]).node, embed_graph(plain, manual).node)
    assert not any(isinstance(m, torch.nn.LayerNorm) for m in model.node_embedding.modules())


def test_checkpoint_records_its_feature_space_and_refuses_other_inputs(tiny_config, tmp_path):
    from hmgdm_core.train import PretrainConfig, TrainConfig, latest_checkpoint, load_checkpoint, pretrain
    from hmgdm_core.vae import model_inputs

    config = PretrainConfig(model=tiny_config, train=TrainConfig(batch_size=2, max_steps=1, device="cpu"))
    raw = [random_graph(8, 48, seed=s) for s in range(2)]  # 48 = 3·4²: windows of side 4 in [-1, 1]
    list(pretrain(raw, config, tmp_path / "raw"))
    raw_checkpoint = latest_checkpoint(tmp_path / "raw")
    state = load_checkpoint(raw_checkpoint)
    assert state.meta["feature_space"] == {"kind": "raw windows", "feature_dim": 48, "window": 4}
    assert model_inputs(48, raw_checkpoint).vae is None
    # Same width, but VAE-latent-like values: without its vae.pt it must not be read as raw windows.
    latent = [random_graph(8, 48, seed=s) for s in range(2)]
    for g in latent:
        g.x, g.edge_attr = 3 * g.x, 3 * g.edge_attr
    list(pretrain(latent, config, tmp_path / "latent"))
    latent_checkpoint = latest_checkpoint(tmp_path / "latent")
    assert load_checkpoint(latent_checkpoint).meta["feature_space"]["kind"] == "latents"
    with pytest.raises(InputError, match="entity-VAE latents"):
        model_inputs(48, latent_checkpoint)
    # Graphs of another window size never reach the network.
    other = Batch.from_data_list([random_graph(8, 27, seed=0)])
    with pytest.raises(InputError, match="numbers per entity"):
        state.model.encode(other, no_mask(other.num_nodes, other.edge_index.shape[1]))


def test_checkpoints_from_before_the_input_switches_still_load(tiny_config, tmp_path):
    import json

    from hmgdm_core.train import PretrainConfig, TrainConfig, latest_checkpoint, load_checkpoint, pretrain

    legacy = replace(tiny_config, input_layernorm=True, standardise_inputs=False, encoder_mask_token=False)
    config = PretrainConfig(
        model=legacy, mask=MaskConfig(mode="strict"), train=TrainConfig(batch_size=2, max_steps=1, device="cpu")
    )
    list(pretrain([random_graph(8, 48, seed=s) for s in range(2)], config, tmp_path))
    path = latest_checkpoint(tmp_path)
    payload = torch.load(path, weights_only=True)
    old = json.loads(payload["config"])
    for key in ("input_layernorm", "standardise_inputs", "encoder_mask_token"):
        del old["model"][key]  # as an older version wrote it
    payload["config"] = json.dumps(old)
    torch.save(payload, path)
    assert load_checkpoint(path).config.model == legacy


def test_pair_rows_maps_every_direction_to_its_pair():
    graph = random_graph(30, 48, k=4, seed=3)
    order = torch.randperm(graph.edge_index.shape[1], generator=torch.Generator().manual_seed(0))
    edge_index, rows = graph.edge_index[:, order], graph.edge_attr[order]
    first, inverse = pair_rows(edge_index)
    assert first.numel() == edge_index.shape[1] // 2
    assert bool((edge_index[0, first] < edge_index[1, first]).all())
    assert torch.equal(rows[first][inverse], rows)
    assert torch.equal(torch.sort(edge_index[:, first][:, inverse], 0).values, torch.sort(edge_index, 0).values)
    # One direction missing: not a contract graph, so no pairing.
    assert pair_rows(edge_index[:, 1:]) is None
    assert pair_rows(torch.tensor([[0, 1], [2, 3]])) is None


@pytest.mark.parametrize("mode", ["context", "strict"])
def test_pairwise_edge_branch_computes_the_per_direction_function(monuseg_dir, monkeypatch, mode):
    """One pass per undirected pair (input projection and encoder edge branch), with the standardisation folded
    into the projections, is the per-direction network on standardised inputs."""
    import hmgdm_core.model.edge_pairs as edge_pairs
    import hmgdm_core.model.hmgdm as network

    torch.manual_seed(0)
    config = replace(ModelConfig(), hidden_dim=32, embed_dim=64, standardise_inputs=True, input_layernorm=False)
    model = HMGDM(replace(config, encoder_mask_token=mode == "context")).eval()
    graphs = monuseg_graphs(monuseg_dir, 3, 60)
    model.fit_standardisation(graphs)
    batch = Batch.from_data_list(graphs)
    standardised = model.standardise(batch)
    everything = no_mask(batch.num_nodes, batch.edge_index.shape[1])
    mask, t, x_t, e_t = masked_inputs(standardised, mode=mode)
    with torch.no_grad():
        embedded = model.encode(batch, everything)
        trained = model(standardised, x_t, e_t, mask, t)
        monkeypatch.setattr(network, "pair_rows", lambda edge_index: None)
        monkeypatch.setattr(edge_pairs, "pair_rows", lambda edge_index: None)
        h_node, h_edge = model.embed_inputs(standardised, standardised.x, standardised.edge_attr)
        embedded_reference = model.encode_embedded(h_node, h_edge, batch.edge_index, everything)
        trained_reference = model(standardised, x_t, e_t, mask, t)
    close = lambda a, b: a.shape == b.shape and torch.allclose(a, b, atol=1e-5, rtol=1e-4)  # noqa: E731
    for ours, reference in ((embedded, embedded_reference), (trained.encoded, trained_reference.encoded)):
        assert close(ours.node_mu, reference.node_mu) and close(ours.node_logvar, reference.node_logvar)
        assert close(ours.edge_mu, reference.edge_mu) and close(ours.edge_logvar, reference.edge_logvar)
        assert all(close(a, b) for a, b in zip(ours.edge_skips, reference.edge_skips, strict=True))
    assert close(trained.node, trained_reference.node) and close(trained.edge, trained_reference.edge)


def test_residual_decode_blocks_let_the_noised_target_reach_its_prediction(tiny_config):
    """Released, every decode block replaces the target tokens (attention over the context, then a graph step),
    so x_t barely matters; the figure's residual blocks keep it."""
    batch = Batch.from_data_list([random_graph(20, 48, seed=1), random_graph(16, 48, seed=2)])
    mask, t, x_t, e_t = masked_inputs(batch, mode="context")
    other = x_t.clone()
    other[mask.node_target] = torch.randn(other[mask.node_target].shape, generator=torch.Generator().manual_seed(0))
    effect = {}
    for residual in (False, True):
        torch.manual_seed(0)
        model = HMGDM(replace(tiny_config, encoder_mask_token=True, residual_decode=residual)).eval()
        with torch.no_grad():
            before, after = model(batch, x_t, e_t, mask, t).node, model(batch, other, e_t, mask, t).node
        effect[residual] = float((before - after).abs().mean() / before.abs().mean())
    assert effect[True] > 0.05
    assert effect[False] < 1e-3


@pytest.mark.parametrize("mode", ["context", "strict", "official"])
def test_pair_tokens_compute_the_per_direction_decoder(monuseg_dir, mode):
    """With one noise per pair, one decoder token per undirected pair is the per-direction network: same
    predictions for every directed target edge, same loss, same gradient (float32, atol 1e-5, rtol 1e-4), and
    the loss scores one prediction row per target pair, never expanded to both directions. Under ``official``
    masks, which split pairs, the decoder keeps one token per direction."""
    torch.manual_seed(0)
    config = replace(ModelConfig(), hidden_dim=32, embed_dim=64, encoder_mask_token=mode == "context")
    graphs = monuseg_graphs(monuseg_dir, 3, 60)
    paired_model = HMGDM(config)
    paired_model.fit_standardisation(graphs)
    directed_model = HMGDM(replace(config, pair_tokens=False))
    directed_model.load_state_dict(paired_model.state_dict())
    batch = paired_model.standardise(Batch.from_data_list(graphs))
    mask, t, noise = draws(batch, mode=mode, hidden=32, paired=True)
    schedule = NoiseSchedule()
    losses, grads, head_rows, scored_rows = {}, {}, {}, {}
    for name, model in (("pair", paired_model), ("directed", directed_model)):
        model.zero_grad()
        hooks = (
            model.decoder.edge_head.register_forward_hook(
                lambda module, inputs, output, name=name: head_rows.__setitem__(name, inputs[0].shape[0])
            ),
            model.register_forward_hook(
                lambda module, inputs, output, name=name: scored_rows.__setitem__(name, output.edge.shape[0])
            ),
        )
        loss = pretraining_loss(model, schedule, batch, mask, t, noise, LossWeights(kl=1.0))
        for hook in hooks:
            hook.remove()
        loss.total.backward()
        losses[name] = loss
        grads[name] = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
    close = lambda a, b: a.shape == b.shape and torch.allclose(a, b, atol=1e-5, rtol=1e-4)  # noqa: E731
    for part in ("total", "kl", "node", "edge"):
        assert close(getattr(losses["pair"], part), getattr(losses["directed"], part)), part
    targets = int(mask.edge_target.sum())
    assert head_rows == {"pair": targets if mode == "official" else targets // 2, "directed": targets}
    assert scored_rows == head_rows
    assert grads["pair"].keys() == grads["directed"].keys()
    assert all(close(grads["pair"][k], grads["directed"][k]) for k in grads["pair"])


def test_pair_noise_is_shared_by_both_directions_and_drawn_per_graph(monuseg_dir):
    graphs = monuseg_graphs(monuseg_dir, 3, 60)
    batch = Batch.from_data_list(graphs)
    mask, _, noise = draws(batch, mode="strict", paired=True)
    _, inverse = pair_rows(batch.edge_index)
    target_rows = mask.edge_target.nonzero().squeeze(1)
    encoded_rows = mask.edge_encoded.nonzero().squeeze(1)
    for rows, eps in ((target_rows, noise.edge), (encoded_rows, noise.edge_latent)):
        pair_of_row = inverse[rows]
        for pair in pair_of_row.unique()[:50]:
            same = eps[pair_of_row == pair]
            assert same.shape[0] == 2 and torch.equal(same[0], same[1])
        # Half as many distinct draws as rows: one per pair.
        assert torch.unique(eps[:, 0]).numel() == rows.numel() // 2
    # A graph's draws do not depend on its batch: the second graph alone draws what it drew in the batch.
    alone = Batch.from_data_list([graphs[1]])
    gens = [torch.Generator().manual_seed(1)]
    alone_mask = draw_mask(alone, MaskConfig(mode="strict"), gens)
    alone_noise = draw_noise(alone, alone_mask, alone.x.shape[1], 16, gens, paired=True)
    in_batch = batch.batch[batch.edge_index[0]][target_rows] == 1
    assert torch.equal(alone_noise.edge, noise.edge[in_batch])


def test_joint_stage_skips_only_the_rows_it_is_told_to_discard():
    """Discarded rows are still keys and values; every other output row equals the full stack's (float32)."""
    from hmgdm_core.model.attention import GraphTransformer

    torch.manual_seed(0)
    stack = GraphTransformer(32, 2, 4).eval()
    graph = torch.tensor([0] * 7 + [2] * 5 + [3] * 4)  # graph 1 has no token
    x = torch.randn(graph.numel(), 32)
    full = stack(x, graph, 4)
    # Some rows of graphs 0 and 2, and every row of graph 3 (a graph whose outputs are all discarded).
    discard = torch.tensor([1, 2, 5, 8, 12, 13, 14, 15])
    kept = torch.ones(graph.numel(), dtype=torch.bool)
    kept[discard] = False
    out = stack(x, graph, 4, discard)
    torch.testing.assert_close(out[kept], full[kept], atol=1e-6, rtol=1e-5)
    assert torch.equal(out[discard], torch.zeros(len(discard), 32))
    # The discarded rows still feed the others: changing one changes the kept outputs of its graph only.
    moved = x.clone()
    moved[1] += 1.0
    changed = (stack(moved, graph, 4, discard) - out).abs().sum(1) > 1e-6
    assert changed[kept & (graph == 0)].all() and not changed[graph != 0].any()
    assert torch.equal(stack(x, graph, 4, torch.arange(graph.numel())), torch.zeros_like(x))


@pytest.mark.parametrize("mode", ["context", "strict", "official"])
def test_decoder_skipping_context_rows_is_the_full_decoder(monuseg_dir, monkeypatch, mode):
    """The joint stage computes no last-layer output for context tokens (the decode blocks replace them): the
    loss, the predictions and every gradient equal the full joint stage's (float32, atol 1e-5, rtol 1e-4)."""
    from hmgdm_core.model.attention import GraphTransformer

    torch.manual_seed(0)
    config = replace(ModelConfig(), hidden_dim=32, embed_dim=64, encoder_mask_token=mode == "context")
    model = HMGDM(config)
    graphs = monuseg_graphs(monuseg_dir, 3, 60)
    model.fit_standardisation(graphs)
    batch = model.standardise(Batch.from_data_list(graphs))
    mask, t, noise = draws(batch, mode=mode, hidden=32, paired=True)
    results = {}
    def full_stack(self, x, graph, num_graphs, discard=None):
        return full_forward(self, x, graph, num_graphs)

    full_forward = GraphTransformer.forward
    for name in ("skipping", "full"):
        if name == "full":
            monkeypatch.setattr(GraphTransformer, "forward", full_stack)
        model.zero_grad()
        loss = pretraining_loss(model, NoiseSchedule(), batch, mask, t, noise, LossWeights(kl=1.0))
        loss.total.backward()
        grads = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
        results[name] = (loss, grads)
    (ours, ours_grads), (reference, reference_grads) = results["skipping"], results["full"]
    close = lambda a, b: a.shape == b.shape and torch.allclose(a, b, atol=1e-5, rtol=1e-4)  # noqa: E731
    for part in ("total", "kl", "node", "edge"):
        assert close(getattr(ours, part), getattr(reference, part)), part
    assert ours_grads.keys() == reference_grads.keys()
    assert all(close(ours_grads[k], reference_grads[k]) for k in ours_grads), [
        k for k in ours_grads if not close(ours_grads[k], reference_grads[k])
    ]
