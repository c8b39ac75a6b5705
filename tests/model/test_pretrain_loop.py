from dataclasses import replace

import numpy as np
import pytest
import torch
import torch_geometric.data
from model_graphs import TINY, random_graph

from hmgdm_core.embed import DEFAULT_READOUT, patch_width
from hmgdm_core.errors import InputError, TrainingError
from hmgdm_core.train import (
    Cancelled,
    CancelToken,
    CheckpointWritten,
    Failed,
    Finished,
    MaskDrawn,
    PretrainConfig,
    Started,
    StepDone,
    StepSkipped,
    TrainConfig,
    drain,
    latest_checkpoint,
    load_checkpoint,
    pretrain,
    resolve_device,
)
from hmgdm_core.train.loop import check_finite
from hmgdm_core.train.step import make_optimizer


def dataset(count=6):
    return [random_graph(5 + 2 * i, 48, seed=i) for i in range(count)]


def config(**train):
    defaults = {"batch_size": 2, "epochs": 2, "lr": 1e-3, "checkpoint_every_epochs": 1, "device": "cpu"}
    return PretrainConfig(model=TINY, train=TrainConfig(**{**defaults, **train}))


def test_run_yields_typed_events_and_loadable_checkpoints(tmp_path):
    events = list(pretrain(dataset(), config(), tmp_path))
    assert isinstance(events[0], Started) and events[0].total_steps == 6
    assert isinstance(events[-1], Finished) and events[-1].step == 6
    steps = [e for e in events if isinstance(e, StepDone)]
    assert [e.step for e in steps] == list(range(1, 7))
    assert all(e.lr == pytest.approx(1e-3) and e.graphs_per_second > 0 and e.eta_seconds >= 0 for e in steps)
    masks = [e for e in events if isinstance(e, MaskDrawn)]
    assert len(masks) == 6 and masks[0].node_target.shape == masks[0].node_graph.shape
    written = [e.path for e in events if isinstance(e, CheckpointWritten)]
    assert [p.name for p in written] == ["checkpoint-00000003.pt", "checkpoint-00000006.pt"]
    loaded = load_checkpoint(tmp_path)
    assert loaded.meta["step"] == 6 and loaded.config == config()
    assert PretrainConfig.from_json((tmp_path / "config.json").read_text()) == config()


def test_cancel_keeps_checkpoints_and_resume_is_bit_exact(tmp_path):
    reference = drain(pretrain(dataset(), config(), tmp_path / "straight"))
    token = CancelToken()
    events = []
    for event in pretrain(dataset(), config(), tmp_path / "cut", cancel=token):
        events.append(event)
        if isinstance(event, StepDone) and event.step == 4:
            token.cancel()
    assert isinstance(events[-1], Cancelled) and events[-1].step == 4
    # The epoch checkpoint written before the cancel is still loadable, and so is the cancel's.
    assert load_checkpoint(tmp_path / "cut" / "checkpoint-00000003.pt").meta["step"] == 3
    assert load_checkpoint(events[-1].checkpoint).meta["step"] == 4
    resumed = drain(pretrain(dataset(), config(), tmp_path / "cut", resume=events[-1].checkpoint))
    assert isinstance(resumed, Finished) and resumed.step == 6
    a = load_checkpoint(reference.checkpoint).model.state_dict()
    b = load_checkpoint(resumed.checkpoint).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_other_data(tmp_path):
    drain(pretrain(dataset(), config(max_steps=1), tmp_path))
    with pytest.raises(InputError, match="another dataset"):
        drain(pretrain(dataset(4), config(), tmp_path, resume=tmp_path))


def test_failed_write_leaves_previous_checkpoint_intact(tmp_path, monkeypatch):
    drain(pretrain(dataset(), config(max_steps=3, checkpoint_every_epochs=1), tmp_path))
    before = latest_checkpoint(tmp_path)

    def broken_save(obj, path):
        with open(path, "wb") as handle:
            handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    run = pretrain(dataset(), config(), tmp_path, resume=before)
    with pytest.raises(OSError, match="disk full"):
        for event in run:
            last = event
    assert isinstance(last, Failed)
    assert latest_checkpoint(tmp_path) == before and not list(tmp_path.glob("*.tmp"))
    monkeypatch.undo()
    assert load_checkpoint(before).meta["step"] == 3


def test_non_finite_features_are_refused_before_training(tmp_path):
    poisoned = dataset(3)
    poisoned[2].edge_attr[0, 1] = float("inf")
    with pytest.raises(InputError, match="graph 2 has NaN or infinite values in edge_attr"):
        next(pretrain(poisoned, config(max_steps=1), tmp_path))
    assert not list(tmp_path.iterdir())  # refused before the run folder is claimed


@pytest.mark.parametrize(
    ("values", "finite"),
    [
        ([float("nan")], False),
        ([float("-inf")], False),
        ([float("inf"), float("-inf")], False),  # the sum is NaN, not ±Inf
        ([3e38, 3e38], True),  # finite values whose float32 sum overflows
        ([0.5, -1.0], True),
    ],
)
def test_the_finiteness_check_is_exact(values, finite):
    graphs = dataset(1)
    graphs[0].x[0, : len(values)] = torch.tensor(values)
    if finite:
        check_finite(graphs)
    else:
        with pytest.raises(InputError, match="graph 0 has NaN or infinite values in x"):
            check_finite(graphs)


@pytest.fixture
def held_patches(sample_svs):
    """Two nuclei graphs of 300² patches of the sample slide, stored with their images."""
    from hmgdm_core.graph import GraphConfig, dataset_from_region
    from hmgdm_core.io import open_slide

    with open_slide(sample_svs) as slide:
        region = slide.region(1200, 1000, 300, 600)
        held = dataset_from_region(slide.read(region), region, 300, GraphConfig(kind="nuclei"))
    assert len(held) == 2 and all("image" in r for r in held.records)
    return held


def test_a_stored_dataset_is_checked_without_expanding_its_graphs(held_patches, monkeypatch):
    # Expanding every graph to check it decoded every image once more and left hundreds of MB of fragmented
    # heap behind: a whole slide's embedding peak grew with its area. Image-held windows are 8-bit pixels.
    from hmgdm_core.graph import GraphDataset

    held = held_patches
    with monkeypatch.context() as patched:
        patched.setattr("hmgdm_core.graph.dataset.record_to_graph", lambda record: pytest.fail("expanded"))
        check_finite(held)
    graph = held[1]
    graph.x, graph.edge_attr = graph.x / 3, graph.edge_attr / 3  # not 8-bit pixels (like latents): kept as floats
    latent = GraphDataset.from_graphs([held[0], graph])
    assert latent.float_features(0) == {} and latent.float_features(1)["pair_attr"].dtype == torch.float32
    latent.records[1]["pair_attr"][0, 0] = float("nan")
    with pytest.raises(InputError, match="graph 1 has NaN or infinite values in edge_attr"):
        check_finite(latent)


def test_a_run_starts_from_the_stored_form_with_the_same_fingerprint_and_statistics(held_patches, monkeypatch):
    # The fingerprint and the input statistics read each record's stored windows: decoding and expanding every
    # graph twice took 18 s of a Kather run's start. The fingerprint must not change (older checkpoints resume).
    from hmgdm_core.model import HMGDM, ModelConfig
    from hmgdm_core.train.checkpoint import data_fingerprint

    held = held_patches
    expanded = list(held)
    config = replace(ModelConfig(), hidden_dim=16, embed_dim=32, standardise_inputs=True, input_layernorm=False)
    models = [HMGDM(config), HMGDM(config)]
    models[1].fit_standardisation(expanded)
    reference = data_fingerprint(expanded)
    with monkeypatch.context() as patched:
        patched.setattr("hmgdm_core.graph.dataset.record_to_graph", lambda record: pytest.fail("expanded"))
        assert data_fingerprint(held) == reference
        models[0].fit_standardisation(held)
    for name in ("node_mean", "node_std", "edge_mean", "edge_std"):
        ours, theirs = getattr(models[0], name), getattr(models[1], name)
        assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-6), name


def test_non_finite_batches_are_skipped_then_fail(tmp_path):
    # Finite features whose squared error overflows float32: the loss is infinite, the inputs are not. Raw
    # inputs: standardisation would scale 1e30 back to finite values.
    def raw(train_config):
        return replace(train_config, model=replace(train_config.model, standardise_inputs=False))

    poisoned = dataset(2)
    poisoned[0].x[0, 0] = 1e30
    events = list(pretrain(poisoned, raw(config(batch_size=1, max_steps=4)), tmp_path))
    assert any(isinstance(e, StepSkipped) for e in events) and isinstance(events[-1], Finished)
    all_bad = [replace_x_huge(g) for g in dataset(2)]
    run = pretrain(all_bad, raw(config(batch_size=1, max_steps=10, max_bad_steps=2)), tmp_path / "bad")
    with pytest.raises(TrainingError, match="consecutive"):
        for event in run:
            last = event
    assert isinstance(last, Failed)


def replace_x_huge(graph):
    graph.x = torch.full_like(graph.x, 1e30)
    return graph


def test_each_torchrun_process_takes_the_gpu_of_its_local_rank(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert resolve_device("cuda") == torch.device("cuda")  # alone: the current GPU
    monkeypatch.setenv("LOCAL_RANK", "2")
    assert resolve_device("cuda") == resolve_device("auto") == torch.device("cuda", 2)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)  # an explicit index wins
    monkeypatch.setenv("LOCAL_RANK", "4")
    with pytest.raises(InputError, match="does not exist"):
        resolve_device("cuda")


def test_cpu_only_when_cuda_is_absent(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(InputError, match="CUDA is not available"):
        resolve_device("cuda:0")
    last = drain(pretrain(dataset(2), config(device="auto", max_steps=1), tmp_path))
    assert isinstance(last, Finished)
    with pytest.raises(InputError, match="fp16 autocast is not supported on cpu"):
        drain(pretrain(dataset(2), config(precision="fp16", max_steps=1), tmp_path / "fp16"))


def test_graphs_breaking_the_contract_are_refused(tmp_path):
    bad = dataset(2)
    del bad[1].edge_pair
    with pytest.raises(InputError, match="edge_pair"):
        drain(pretrain(bad, config(batch_size=2, max_steps=1), tmp_path))
    with pytest.raises(InputError, match="no graph"):
        drain(pretrain([], config(), tmp_path))


def test_config_json_round_trip():
    original = replace(config(), mask=replace(config().mask, mode="official"))
    assert PretrainConfig.from_json(original.to_json()) == original
    with pytest.raises(InputError, match="unknown"):
        PretrainConfig.from_json('{"train": {"lr_typo": 1}}')


def test_pretrain_and_embed_graphs_of_the_graph_package(monuseg_dir, tmp_path):
    import tifffile

    from hmgdm_core.embed import embed_dataset
    from hmgdm_core.graph import GraphDataset, graph_from_image
    from hmgdm_core.model import ModelConfig

    image = tifffile.imread(sorted((monuseg_dir / "images").rglob("*.tif"))[0])[..., :3]
    graphs = GraphDataset.from_graphs([graph_from_image(image[y : y + 256, :256], 0.25) for y in (0, 256)])
    small = ModelConfig(
        embed_dim=32, hidden_dim=16, latent_mlp_dim=8, time_mlp_dim=32, block_mlp_dim=8, head_dims=(16, 32)
    )
    config = PretrainConfig(model=small, train=TrainConfig(batch_size=2, max_steps=2, device="cpu"))
    events = list(pretrain(graphs, config, tmp_path))
    assert isinstance(events[-1], Finished) and all(np.isfinite(e.loss) for e in events if isinstance(e, StepDone))
    embedding = embed_dataset(load_checkpoint(tmp_path).model, graphs, device="cpu")
    assert embedding.patch.shape == (2, patch_width(DEFAULT_READOUT, 16)) and np.isfinite(embedding.patch).all()


def test_labelled_and_unlabelled_graphs_train_and_embed_together(tmp_path):
    # Labelled tiles beside unlabelled slide patches (the bundled model's data): metadata that only some graphs
    # carry must neither break batching nor change anything the network computes.
    from hmgdm_core.embed import embed_dataset
    from hmgdm_core.graph import collate
    from hmgdm_core.graph.contract import MODEL_FIELDS

    plain = dataset(4)
    mixed = dataset(4)
    for graph, label in zip(mixed[:2], (3, 5), strict=True):
        graph.y, graph.label_name, graph.group = torch.tensor([label]), f"class {label}", "slide A"
    with pytest.raises(KeyError):  # what plain PyG batching does with them
        torch_geometric.data.Batch.from_data_list(mixed)
    batch = collate(mixed)
    assert batch.num_graphs == 4 and set(batch.keys()) == {*MODEL_FIELDS, "num_nodes", "batch", "ptr"}
    assert torch.equal(batch.edge_pair, collate(plain).edge_pair) and int(batch.edge_pair.max()) >= plain[0].num_edges
    a = drain(pretrain(plain, config(max_steps=2), tmp_path / "plain"))
    b = drain(pretrain(mixed, config(max_steps=2), tmp_path / "mixed"))
    model = load_checkpoint(b.checkpoint).model
    for key, value in load_checkpoint(a.checkpoint).model.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    np.testing.assert_array_equal(
        embed_dataset(model, mixed, device="cpu").patch, embed_dataset(model, plain, device="cpu").patch
    )


def test_learning_rate_warms_up_and_drops_on_plateaus():
    from hmgdm_core.train.learning_rate import LearningRate

    control = LearningRate(
        TrainConfig(
            lr=1e-3, warmup_steps=4, plateau_every_epochs=2, plateau_patience=1, plateau_factor=0.5, min_lr=3e-4
        )
    )
    assert [control.at(s) for s in (1, 2, 4, 9)] == pytest.approx([2.5e-4, 5e-4, 1e-3, 1e-3])
    for epoch, loss in enumerate([1.0, 1.0, 0.9, 0.9, 0.95, 0.95, 0.95, 0.95]):
        control.end_epoch(epoch, loss)  # checks after epochs 1, 3, 5, 7: better, better, worse, worse
    assert control.at(10) == pytest.approx(5e-4)
    control.load_state_dict({**control.state_dict(), "scale": 0.01})
    assert control.at(10) == pytest.approx(3e-4)  # min_lr floor


def test_micro_batches_give_the_global_batch_loss(tmp_path):
    whole = [e for e in pretrain(dataset(), config(max_steps=3), tmp_path / "a") if isinstance(e, StepDone)]
    micro = [
        e
        for e in pretrain(dataset(), config(max_steps=3, micro_batch_size=1), tmp_path / "b")
        if isinstance(e, StepDone)
    ]
    for a, b in zip(whole, micro, strict=True):
        assert (b.loss, b.kl, b.node, b.edge) == pytest.approx((a.loss, a.kl, a.node, a.edge), rel=1e-4)


def test_default_loss_has_no_kl_term_and_the_paper_preset_keeps_it(tmp_path):
    # The default recipe drops the KL term (it collapses the latents); the paper preset keeps the released 1·KL.
    default = [e for e in pretrain(dataset(2), config(epochs=1), tmp_path / "default") if isinstance(e, StepDone)]
    assert all(e.kl > 0 and e.loss == pytest.approx(0.5 * e.node + 0.5 * e.edge, rel=1e-5) for e in default)
    paper = replace(
        config(epochs=1), train=replace(config(epochs=1).train, loss=PretrainConfig.preset("paper").train.loss)
    )
    released = [e for e in pretrain(dataset(2), paper, tmp_path / "paper") if isinstance(e, StepDone)]
    assert all(e.loss == pytest.approx(e.kl + 0.5 * e.node + 0.5 * e.edge, rel=1e-5) for e in released)


def test_make_optimizer_is_adam_with_the_run_settings():
    """The fused update is Adam's per-parameter update with the run's learning rate, betas and weight decay."""
    train = TrainConfig(lr=3e-3, betas=(0.8, 0.99), weight_decay=0.01)
    torch.manual_seed(0)
    fused_net, loop_net = torch.nn.Linear(16, 8), torch.nn.Linear(16, 8)
    loop_net.load_state_dict(fused_net.state_dict())
    fused = make_optimizer(fused_net, train, torch.device("cpu"))
    loop = torch.optim.Adam(loop_net.parameters(), lr=3e-3, betas=(0.8, 0.99), weight_decay=0.01, foreach=False)
    assert fused.param_groups[0]["fused"]
    for step in range(5):
        x = torch.randn(32, 16, generator=torch.Generator().manual_seed(step))
        for net, optimizer in ((fused_net, fused), (loop_net, loop)):
            optimizer.zero_grad()
            net(x).square().mean().backward()
            optimizer.step()
    for a, b in zip(fused_net.parameters(), loop_net.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5)
    # Against a moving target: the weights did change.
    torch.manual_seed(0)
    assert not torch.allclose(torch.nn.Linear(16, 8).weight, fused_net.weight)
