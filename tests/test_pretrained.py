"""Bundled pre-trained models: files match their cards, load weights-only, and beat random weights."""

import csv
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from hmgdm_core.embed import DEFAULT_READOUT, embed_dataset, patch_width, reconstruct
from hmgdm_core.errors import InputError
from hmgdm_core.graph import GraphConfig, GraphDataset, dataset_from_region
from hmgdm_core.graph.dataset import dataset_from_folder
from hmgdm_core.io import open_slide
from hmgdm_core.model import HMGDM, ModelConfig
from hmgdm_core.pretrained import (
    DEFAULT_PRETRAINED,
    export_pretrained,
    list_pretrained,
    load_pretrained,
    model_card,
    pretrained_config,
    pretrained_path,
    registry,
    resolve_checkpoint,
)
from hmgdm_core.pretrained import export as export_module
from hmgdm_core.pretrained.export import FP16_TOLERANCE, MAX_BUNDLED_BYTES
from hmgdm_core.train import PretrainConfig, TrainConfig, drain, load_checkpoint, pretrain

KATHER_MPP = 0.495
# The fixed probe subset: 30 tiles of each of the 8 classes, spread evenly over index.csv. Smaller subsets are
# dominated by which tiles they hold: with 12 per class the first (127-step) bundled model scored below random.
PER_CLASS = 30
# For the small patch graphs of conftest (8² windows: F = 192).
TINY = ModelConfig(
    feature_dim=192,
    embed_dim=32,
    hidden_dim=16,
    latent_mlp_dim=8,
    time_mlp_dim=32,
    block_mlp_dim=16,
    head_dims=(32, 64),
)


@pytest.fixture(scope="module")
def bundled():
    return load_pretrained(DEFAULT_PRETRAINED)


def untrained_like(trained: HMGDM, seed: int) -> HMGDM:
    """The same network and input pipeline (its fitted standardisation statistics) with random weights."""
    torch.manual_seed(seed)
    model = HMGDM(trained.config).eval()
    for name, buffer in trained.named_buffers():
        model.get_buffer(name).copy_(buffer)
    return model


@pytest.fixture(scope="module")
def random_init(bundled):
    """The bundled network and input pipeline with random weights (a fixed seed)."""
    return untrained_like(bundled.model, 0)


def kather_subset_graphs(kather_dir: Path, folder: Path) -> GraphDataset:
    """Tissue graphs (the bundled model's graph settings) of the fixed subset: every class, tiles spread evenly.

    ``folder`` receives the subset's index. Also used by ``scripts/probe_checkpoints.py``.
    """
    with (kather_dir / "index.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    picked = []
    for label in sorted({r["class_index"] for r in rows}, key=int):
        members = [r for r in rows if r["class_index"] == label]
        picked += [members[i] for i in np.linspace(0, len(members) - 1, PER_CLASS).round().astype(int)]
    (folder / "index.csv").write_text(
        "path,class_index,slide\n"
        + "".join(f"{kather_dir.resolve() / r['path']},{r['class_index']},{r['slide']}\n" for r in picked)
    )
    return dataset_from_folder(folder, KATHER_MPP, GraphConfig(kind="tissue", restrict_to_tissue=False))


@pytest.fixture(scope="module")
def kather_subset(kather_dir, tmp_path_factory):
    return kather_subset_graphs(kather_dir, tmp_path_factory.mktemp("kather-subset"))


def nearest_centroid_accuracy(embeddings: np.ndarray, labels: np.ndarray) -> float:
    """Leave-one-out nearest-centroid accuracy on standardised features (deterministic, no fitting noise)."""
    z = (embeddings - embeddings.mean(0)) / (embeddings.std(0) + 1e-6)
    right = 0
    for i in range(len(z)):
        keep = np.arange(len(z)) != i
        centroids = {c: z[keep & (labels == c)].mean(0) for c in np.unique(labels)}
        right += min(centroids, key=lambda c: np.linalg.norm(z[i] - centroids[c])) == labels[i]
    return right / len(z)


def pairwise_separation(embeddings: np.ndarray, labels: np.ndarray) -> float:
    """Two-class separation averaged over every pair of classes: the mean, over the pairs, of the leave-one-out
    nearest-centroid accuracy on that pair's tiles alone (features standardised over them).

    Every pair counts, so no pair is chosen after seeing the results.
    """
    classes = np.unique(labels)
    scores = []
    for i, a in enumerate(classes):
        for b in classes[i + 1 :]:
            pair = (labels == a) | (labels == b)
            scores.append(nearest_centroid_accuracy(embeddings[pair], labels[pair]))
    return float(np.mean(scores))


def test_at_least_one_model_is_bundled_with_its_card():
    names = list_pretrained()
    assert DEFAULT_PRETRAINED in names
    total = sum((registry.models_dir() / f"{n}.pt").stat().st_size for n in names)
    assert total <= MAX_BUNDLED_BYTES


@pytest.mark.parametrize("name", list_pretrained())
def test_each_file_matches_its_card_and_loads_weights_only(name):
    card = model_card(name)
    path = pretrained_path(name)
    assert registry.file_sha256(path) == card["sha256"] and path.stat().st_size == card["bytes"]
    payload = torch.load(path, map_location="cpu", weights_only=True)
    assert json.loads(payload["config"]) == card["config"]
    assert payload["optimizer"] == {} and payload["lr"] == {}
    assert pretrained_config(name) == load_pretrained(name).config  # the card's config is the weights' config
    stored = {v.dtype for v in payload["model"].values() if v.is_floating_point()}
    assert stored == {torch.float16 if card["dtype"] == "float16" else torch.float32}
    if card["dtype"] == "float16":
        assert card["fp16_embedding_difference"] <= FP16_TOLERANCE
    checkpoint = load_pretrained(name)
    assert checkpoint.config == PretrainConfig.from_json(json.dumps(card["config"]))
    assert all(p.dtype == torch.float32 for p in checkpoint.model.parameters())
    # Provenance: permitted data only, each with its licence; the command and the recipe are recorded.
    licences = {source["licence"] for source in card["training_data"]}
    assert licences <= {"CC BY 4.0", "CC0 1.0"} and "CC BY 4.0" in licences
    assert not any("monuseg" in source["name"].lower() for source in card["training_data"])
    assert "train_bundled.py" in card["command"] and card["steps"] > 0 and card["wall_time_s"] > 0
    for key in ("hardware", "date", "graphs", "representation"):
        assert key in card


def test_a_damaged_file_is_refused(tmp_path, monkeypatch):
    for suffix in (".pt", ".json"):
        shutil.copy(registry.models_dir() / f"{DEFAULT_PRETRAINED}{suffix}", tmp_path)
    monkeypatch.setattr(registry, "models_dir", lambda: tmp_path)
    weights = tmp_path / f"{DEFAULT_PRETRAINED}.pt"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(InputError, match="SHA-256"):
        load_pretrained(DEFAULT_PRETRAINED)
    with pytest.raises(InputError, match="no bundled model"):
        model_card("no-such-model")


def test_names_resolve_but_never_shadow_a_path(tmp_path, monkeypatch):
    assert resolve_checkpoint(DEFAULT_PRETRAINED) == pretrained_path(DEFAULT_PRETRAINED)
    monkeypatch.chdir(tmp_path)
    (tmp_path / DEFAULT_PRETRAINED).mkdir()
    assert resolve_checkpoint(DEFAULT_PRETRAINED) == tmp_path.joinpath(DEFAULT_PRETRAINED).relative_to(tmp_path)
    assert resolve_checkpoint("run/checkpoint-00000001.pt").name == "checkpoint-00000001.pt"


@pytest.mark.xfail(
    strict=True,
    reason="known miss (issues 12/14): the bundled model (5,369 CPU steps of the default recipe at small widths) "
    "does not separate two Kather classes better than random weights on the same input pipeline: two-class "
    "separation 0.914 against 0.917, 0.924, 0.920 for three seeds, although its linear probe is ahead (67.7 vs "
    "62.2-64.1 macro-F1; docs/pretrained.md). "
    "Strict: a model that beats them makes this fail, so the mark must then go.",
)
def test_bundled_embeddings_separate_kather_classes_better_than_random(bundled, kather_subset):
    labels = kather_subset.labels
    assert np.unique(labels, return_counts=True)[1].tolist() == [PER_CLASS] * 8
    trained = embed_dataset(bundled.model, kather_subset, device="cpu").patch
    assert trained.shape == (8 * PER_CLASS, patch_width(DEFAULT_READOUT, bundled.config.model.hidden_dim))
    assert np.isfinite(trained).all()
    separation = pairwise_separation(trained, labels)
    # Better than every one of three random initialisations of the same network, not just a lucky one.
    for seed in range(3):
        untrained = embed_dataset(untrained_like(bundled.model, seed), kather_subset, device="cpu").patch
        untrained_separation = pairwise_separation(untrained, labels)
        assert separation > untrained_separation, (seed, separation, untrained_separation)


def test_bundled_reconstructs_the_sample_better_than_random(bundled, random_init, sample_svs):
    slide = open_slide(sample_svs)
    region = slide.region(1400, 700, 1024, 1024, mpp=1.0)
    graphs = [g for g in dataset_from_region(slide.read(region), region, 128, GraphConfig()) if g.num_nodes > 1]
    assert len(graphs) >= 4
    config = bundled.config

    def error(model: HMGDM) -> float:
        errors = []
        for seed, graph in enumerate(graphs):
            for t in (100, 500, 900):
                out = reconstruct(model, graph, t, diffusion=config.diffusion, mask_config=config.mask, seed=seed)
                targets = graph.x[out.mask.node_target]
                errors.append(torch.mean((out.node_predicted - targets) ** 2).item())
        return float(np.mean(errors))

    assert error(bundled.model) < error(random_init)


def test_init_starts_a_new_run_from_the_bundled_weights(bundled, kather_subset, tmp_path):
    # lr 1e-30 (lr must be > 0): one Adam step moves each weight by ~1e-30, so the run's weights are the bundled ones.
    config = PretrainConfig(
        model=bundled.config.model,
        mask=bundled.config.mask,
        diffusion=bundled.config.diffusion,
        train=TrainConfig(batch_size=2, max_steps=1, lr=1e-30, device="cpu"),
    )
    finished = drain(pretrain(kather_subset[:8], config, tmp_path / "run", init=pretrained_path(DEFAULT_PRETRAINED)))
    state = load_checkpoint(finished.checkpoint)
    assert state.meta["step"] == 1 and state.meta["init"].endswith(f"{DEFAULT_PRETRAINED}.pt")
    for key, value in bundled.model.state_dict().items():
        torch.testing.assert_close(state.model.state_dict()[key], value, rtol=0, atol=1e-20, msg=key)
    with pytest.raises(InputError, match="another model config"):
        drain(
            pretrain(
                kather_subset[:8],
                PretrainConfig(model=replace(TINY, feature_dim=3072)),
                tmp_path / "x",
                init=finished.checkpoint,
            )
        )
    with pytest.raises(InputError, match="either resume"):
        drain(pretrain(kather_subset[:8], config, tmp_path / "y", init=finished.checkpoint, resume=finished.checkpoint))


@pytest.fixture(scope="module")
def tiny_run(small_patch_graphs, tmp_path_factory):
    config = PretrainConfig(model=TINY, train=TrainConfig(batch_size=2, max_steps=2, lr=1e-3, device="cpu"))
    return drain(pretrain(small_patch_graphs, config, tmp_path_factory.mktemp("tiny"))).checkpoint


def test_export_stores_half_precision_that_changes_nothing_measurable(tiny_run, small_patch_graphs, tmp_path):
    path = export_pretrained(tiny_run, "tiny", {"steps": 2}, small_patch_graphs, tmp_path)
    card = json.loads((tmp_path / "tiny.json").read_text())
    assert card["dtype"] == "float16" and card["steps"] == 2 and card["sha256"] == registry.file_sha256(path)
    # Measured here again: fp16-stored weights against the fp32 checkpoint, on real patch graphs.
    difference = export_module.embedding_difference(tiny_run, path, small_patch_graphs)
    assert difference == pytest.approx(card["fp16_embedding_difference"]) and 0 < difference <= FP16_TOLERANCE
    fp32, fp16 = load_checkpoint(tiny_run).model, load_checkpoint(path).model
    a = embed_dataset(fp32, small_patch_graphs, device="cpu").patch
    b = embed_dataset(fp16, small_patch_graphs, device="cpu").patch
    np.testing.assert_allclose(b, a, rtol=0, atol=FP16_TOLERANCE * np.abs(a).max() * 10)
    assert path.stat().st_size < 0.6 * tiny_run.stat().st_size  # no optimiser state, half the weight bytes


def test_export_refuses_bad_names_and_the_size_budget(tiny_run, small_patch_graphs, tmp_path, monkeypatch):
    with pytest.raises(InputError, match="name"):
        export_pretrained(tiny_run, "../escape", {}, small_patch_graphs, tmp_path)
    monkeypatch.setattr(export_module, "MAX_BUNDLED_BYTES", 1000)
    with pytest.raises(InputError, match="narrower network"):
        export_pretrained(tiny_run, "tiny", {}, small_patch_graphs, tmp_path)
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_export_budget_counts_bundled_models_only(tiny_run, small_patch_graphs, tmp_path, monkeypatch):
    """A checkpoint copied into the models folder is not shipped; another model with its card is."""
    size = export_pretrained(tiny_run, "tiny", {}, small_patch_graphs, tmp_path).stat().st_size
    (tmp_path / "tiny.pt").rename(tmp_path / "other.pt")
    (tmp_path / "tiny.json").unlink()
    monkeypatch.setattr(export_module, "MAX_BUNDLED_BYTES", size + size // 2)
    export_pretrained(tiny_run, "tiny", {}, small_patch_graphs, tmp_path)  # other.pt has no card: not counted
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(InputError, match="narrower network"):
        export_pretrained(tiny_run, "tiny", {}, small_patch_graphs, tmp_path)


def test_docs_page_shows_every_card_as_it_is():
    """``scripts/train_bundled.py`` rewrites the cards section; a hand-edited or stale card fails here."""
    from pathlib import Path

    from hmgdm_core.cli.pretrained import format_card

    page = (Path(__file__).resolve().parents[1] / "docs" / "pretrained.md").read_text(encoding="utf-8")
    for name in list_pretrained():
        assert format_card(model_card(name)) in page, name


def test_bundled_decoder_reads_its_encoders_context(bundled, kather_subset):
    from hmgdm_core.model.diagnostics import decoder_reliance

    config = bundled.config
    for row in decoder_reliance(bundled.model, kather_subset[:16], config.diffusion, config.mask, timesteps=(10, 900)):
        assert row.with_encoder < 0.8 * row.encoder_zeroed, row
