"""Memory-budgeted passes, cancel points inside a step and checkpoint retention."""

import itertools

import pytest
import torch
from model_graphs import TINY, random_graph

from hmgdm_core.diffusion import NoiseSchedule
from hmgdm_core.embed import embed_dataset
from hmgdm_core.errors import InputError
from hmgdm_core.model import HMGDM
from hmgdm_core.train import (
    Cancelled,
    CancelToken,
    CheckpointWritten,
    PretrainConfig,
    StepDone,
    TrainConfig,
    drain,
    load_checkpoint,
    pretrain,
)
from hmgdm_core.train.distributed import ProcessGroup
from hmgdm_core.train.interrupt import PassCancelled
from hmgdm_core.train.memory import pack_by_memory, pass_bytes
from hmgdm_core.train.step import optimisation_step

SIZES = [5, 17, 9, 30, 12, 7]


def graphs():
    return [random_graph(n, 48, seed=i) for i, n in enumerate(SIZES)]


def tokens(g):
    return g.num_nodes, g.edge_index.shape[1]


def config(**train):
    defaults = {"batch_size": 3, "epochs": 2, "lr": 1e-3, "checkpoint_every_epochs": 1, "device": "cpu"}
    return PretrainConfig(model=TINY, train=TrainConfig(**{**defaults, **train}))


def test_packing_covers_every_graph_once_within_budget_and_groups_sizes():
    sizes = [tokens(g) for g in graphs()]
    cost = [pass_bytes(n, e, TINY) for n, e in sizes]
    budget = max(cost) + min(cost)  # the largest graph fits, with at most the smallest one beside it
    passes = pack_by_memory(sizes, TINY, budget, max_graphs=4)
    assert sorted(i for p in passes for i in p) == list(range(len(sizes)))
    assert all(sum(cost[i] for i in p) <= budget and 1 <= len(p) <= 4 for p in passes)
    assert len(passes) > 1
    # Grouped by size: every graph of an earlier pass is at least as large as every graph of a later one.
    for a, b in itertools.pairwise(passes):
        assert min(sum(sizes[i]) for i in a) >= max(sum(sizes[i]) for i in b)


def test_a_graph_over_the_budget_is_an_input_error_naming_it(tmp_path):
    sizes = [tokens(g) for g in graphs()]
    with pytest.raises(InputError, match=r"graph 3 \(30 nodes, .*memory_gb"):
        pack_by_memory(sizes, TINY, pass_bytes(*sizes[3], TINY) - 1)
    # In a run the message names the dataset index; every other graph fits.
    with pytest.raises(InputError, match=r"graph 3 \(30 nodes"):
        drain(pretrain(graphs(), config(memory_gb=(pass_bytes(*sizes[3], TINY) - 1) / 2**30), tmp_path / "run"))


def _gradient(memory_gb):
    torch.manual_seed(0)
    model = HMGDM(TINY)
    cfg = config(memory_gb=memory_gb)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.0)
    batch = graphs()
    result = optimisation_step(
        batch,
        range(len(batch)),
        [11 + i for i in range(len(batch))],
        7,
        len(batch),
        model,
        NoiseSchedule(cfg.diffusion),
        optimizer,
        torch.amp.GradScaler(enabled=False),
        cfg,
        ProcessGroup(rank=0, world_size=1),
        torch.device("cpu"),
    )
    return {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}, result


def test_budgeted_passes_give_the_one_pass_gradient():
    sizes = [tokens(g) for g in graphs()]
    small = max(pass_bytes(n, e, TINY) for n, e in sizes) / 2**30
    assert len(pack_by_memory(sizes, TINY, int(small * 2**30))) >= 3  # really split
    whole, one = _gradient(memory_gb=8.0)
    split, many = _gradient(memory_gb=small)
    assert whole.keys() == split.keys() and whole
    for name in whole:
        torch.testing.assert_close(split[name], whole[name], rtol=1e-4, atol=1e-6, msg=name)
    assert many.parts == pytest.approx(one.parts, rel=1e-5)
    # The per-graph flags come back in the graphs' order, whatever the passes' order.
    for field in ("node_target", "edge_target", "node_encoded", "edge_encoded", "node_graph"):
        assert (getattr(many, field) == getattr(one, field)).all(), field


def test_cancel_inside_a_step_drops_it_and_resume_is_bit_exact(tmp_path):
    reference = drain(pretrain(graphs(), config(micro_batch_size=1), tmp_path / "straight"))
    token = CancelToken()
    calls = {"armed": False, "n": 0}

    def count(module, args):
        # Set the token from inside step 3, after its first micro-batch's forward has begun.
        if calls["armed"]:
            calls["n"] += 1
            if calls["n"] == 50:
                token.cancel()

    events = []
    hook = torch.nn.modules.module.register_module_forward_pre_hook(count)
    try:
        for event in pretrain(graphs(), config(micro_batch_size=1), tmp_path / "cut", cancel=token):
            events.append(event)
            calls["armed"] = calls["armed"] or (isinstance(event, StepDone) and event.step == 2)
    finally:
        hook.remove()
    assert calls["n"] == 50  # set inside step 3, and the pass stopped at that very module call
    assert isinstance(events[-1], Cancelled) and events[-1].step == 2
    assert [e.step for e in events if isinstance(e, StepDone)] == [1, 2]
    assert load_checkpoint(events[-1].checkpoint).meta["step"] == 2
    resumed = drain(pretrain(graphs(), config(micro_batch_size=1), tmp_path / "cut", resume=events[-1].checkpoint))
    a = load_checkpoint(reference.checkpoint).model.state_dict()
    b = load_checkpoint(resumed.checkpoint).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_embedding_splits_by_memory_and_stops_on_cancel():
    torch.manual_seed(0)
    model = HMGDM(TINY)
    batch = graphs()
    sizes = [tokens(g) for g in batch]
    small = max(pass_bytes(n, e, TINY, training=False) for n, e in sizes) / 2**30
    whole = embed_dataset(model, batch, batch_size=6, device="cpu", memory_gb=8.0, entities=True)
    split = embed_dataset(model, batch, batch_size=6, device="cpu", memory_gb=small, entities=True)
    torch.testing.assert_close(torch.from_numpy(split.patch), torch.from_numpy(whole.patch), rtol=1e-5, atol=1e-6)
    assert [n.shape for n in split.node] == [(g.num_nodes, TINY.hidden_dim) for g in batch]
    assert [e.shape[0] for e in split.edge] == [g.edge_index.shape[1] for g in batch]
    with pytest.raises(InputError, match="embedding"):
        embed_dataset(model, batch, device="cpu", memory_gb=small / 4)
    token = CancelToken()
    token.cancel()
    with pytest.raises(PassCancelled):
        embed_dataset(model, batch, device="cpu", cancel=token)


def test_retention_keeps_the_last_the_best_and_the_resumed(tmp_path):
    events = list(pretrain(graphs(), config(epochs=6, keep_last=2), tmp_path))
    written = [e.path for e in events if isinstance(e, CheckpointWritten)]
    assert len(written) == 6  # 2 steps per epoch, one checkpoint per epoch
    meta = load_checkpoint(written[-1]).meta
    best = tmp_path / f"checkpoint-{meta['best_step']:08d}.pt"
    kept = set(tmp_path.glob("checkpoint-*.pt"))
    assert kept == set(written[-2:]) | {best}
    # Resuming from the oldest kept checkpoint with keep_last=1 never deletes it.
    oldest = min(kept)
    drain(pretrain(graphs(), config(epochs=8, keep_last=1), tmp_path, resume=oldest))
    assert oldest.is_file() and (tmp_path / "checkpoint-00000016.pt").is_file()
    with pytest.raises(InputError, match="keep_last"):
        drain(pretrain(graphs(), config(keep_last=0), tmp_path / "none"))


def test_fine_tuning_in_budgeted_passes_takes_the_one_pass_step():
    import numpy as np

    from hmgdm_core.downstream.finetune import FinetuneConfig, iter_finetune
    from hmgdm_core.downstream.pretrained_encoder import pretrained_classifier

    batch = graphs()
    labels = np.array([0, 1, 0, 1, 1, 0])
    small = max(pass_bytes(*tokens(g), TINY) for g in batch) / 2**30
    assert len(pack_by_memory([tokens(g) for g in batch], TINY, int(small * 2**30))) >= 3
    states = []
    for memory_gb in (8.0, small):
        torch.manual_seed(0)
        model = pretrained_classifier(HMGDM(TINY), 2, hidden_channels=8)
        config = FinetuneConfig(epochs=2, batch_size=6, memory_gb=memory_gb)
        epochs = list(iter_finetune(model, batch, labels, batch[:2], labels[:2], config))
        states.append(({k: v.clone() for k, v in model.state_dict().items()}, epochs[0].train_loss))
    (whole, whole_loss), (split, split_loss) = states
    assert split_loss == pytest.approx(whole_loss, rel=1e-5)
    for name in whole:
        # The attention score's bias has an exact gradient of 0 (a softmax ignores a shared shift): Adam scales
        # its float rounding noise up to steps of about lr / 10, so it only stays within lr per step.
        atol = 2 * config.lr if name == "pool.score.bias" else 1e-5
        torch.testing.assert_close(split[name], whole[name], rtol=1e-4, atol=atol, msg=name)
