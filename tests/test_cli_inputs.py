"""`hmgdm classify`, `embed --pool`, `export` and unreadable files, through the real command in a subprocess."""

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import torch

from hmgdm_core.downstream import classify_embeddings, pooled_measurements
from hmgdm_core.errors import DownstreamError, InputError
from hmgdm_core.graph import GraphDataset
from hmgdm_core.train import PretrainConfig, drain, load_checkpoint, pretrain

HMGDM = shutil.which("hmgdm") or pytest.fail("the hmgdm console script is not installed")
TINY = {
    "feature_dim": 192,
    "embed_dim": 16,
    "hidden_dim": 8,
    "latent_mlp_dim": 4,
    "time_mlp_dim": 16,
    "block_mlp_dim": 4,
    "head_dims": [8, 16],
}


def hmgdm(*args, status=0):
    result = subprocess.run(
        [HMGDM, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == status, result.stdout + result.stderr
    if status:
        errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
        assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    return result


def probe_data(tmp_path, names=True):
    """Three separable classes over 10 slides, plus a class found on 2 slides only."""
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 40)
    groups = np.array([f"slide{i % 10}" for i in range(120)])
    rare_labels, rare_groups = np.full(8, 3), np.array(["slide0", "slide1"] * 4)
    labels, groups = np.concatenate([labels, rare_labels]), np.concatenate([groups, rare_groups])
    embeddings = rng.normal(3.0 * labels[:, None], 1.0, (len(labels), 6)).astype(np.float32)
    arrays = {"embeddings": embeddings, "labels": labels, "groups": groups}
    if names:
        arrays["label_names"] = np.array(["TUMOR", "STROMA", "LYMPHO", "EMPTY"])[labels]
    np.savez(tmp_path / "emb.npz", **arrays)
    return tmp_path / "emb.npz"


def test_classify_names_classes_leaves_rare_ones_out_and_drops_on_request(tmp_path):
    path = probe_data(tmp_path)
    result = hmgdm("classify", path, "--out", tmp_path / "r.json")
    assert "warning: class EMPTY left out: it occurs in 2 group(s), fewer than the 5 folds" in result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["config"]["drop_classes"] == ["EMPTY"]
    assert "TUMOR" in result.stdout and "LYMPHO" in result.stdout and report["summary"]["accuracy"]["mean"] > 0.9
    result = hmgdm("classify", path, "--drop-classes", "STROMA", "--out", tmp_path / "d.json")
    assert json.loads((tmp_path / "d.json").read_text())["config"]["drop_classes"] == ["STROMA", "EMPTY"]
    assert "STROMA" not in result.stdout
    # Refusing rare classes names the class as the file knows it, not its 0-based code.
    result = hmgdm("classify", path, "--keep-rare-classes", status=2)
    assert "EMPTY (2 groups)" in result.stderr
    result = hmgdm("classify", path, "--drop-classes", "NOPE", status=2)
    assert "no class NOPE to drop" in result.stderr


def test_fold_check_names_the_class_not_its_code():
    labels = np.array([10] * 20 + [20] * 20)
    groups = np.array([f"s{i % 5}" for i in range(20)] + ["a", "b"] * 10)
    embeddings = np.random.default_rng(0).normal(size=(40, 4))
    with pytest.raises(DownstreamError, match=r"20 \(2 groups\)"):  # the code of class 20 is 1
        classify_embeddings(embeddings, labels, groups)


def test_embed_pool_gives_one_row_per_dataset(tmp_path, small_patch_graphs):
    for name, graphs, label in (("a", small_patch_graphs[:2], 0), ("b", small_patch_graphs[2:], 1)):
        for g in graphs:
            g.y, g.group = torch.tensor([label]), name
        GraphDataset.from_graphs(graphs).save(tmp_path / f"{name}.pt")
    config = PretrainConfig.from_json(json.dumps({"model": TINY, "train": {"device": "cpu", "max_steps": 1}}))
    drain(pretrain(GraphDataset.load(tmp_path / "a.pt"), config, tmp_path / "run"))
    datasets = [tmp_path / "a.pt", tmp_path / "b.pt"]
    hmgdm("embed", tmp_path / "run", *datasets, "--out", tmp_path / "rows.npz")
    hmgdm("embed", tmp_path / "run", *datasets, "--out", tmp_path / "mean.npz", "--pool", "mean")
    hmgdm("embed", tmp_path / "run", *datasets, "--out", tmp_path / "max.npz", "--pool", "max")
    with (
        np.load(tmp_path / "rows.npz") as rows,
        np.load(tmp_path / "mean.npz") as mean,
        np.load(tmp_path / "max.npz") as top,
    ):
        assert mean["embeddings"].shape == (2, rows["embeddings"].shape[1])
        np.testing.assert_allclose(mean["embeddings"][0], rows["embeddings"][:2].mean(0), rtol=1e-6)
        np.testing.assert_allclose(top["embeddings"][1], rows["embeddings"][2:].max(0), rtol=1e-6)
        assert list(mean["labels"]) == [0, 1] and list(mean["groups"]) == ["a", "b"]
        assert list(mean["names"]) == ["a", "b"]
    result = hmgdm("embed", tmp_path / "run", *datasets, "--out", tmp_path / "folder", "--pool", "mean", status=2)
    assert "--pool writes one row per dataset into one file" in result.stderr


def test_embed_measurements_appends_the_pooled_measurements(tmp_path, small_patch_graphs):
    GraphDataset.from_graphs(small_patch_graphs).save(tmp_path / "a.pt")
    config = PretrainConfig.from_json(json.dumps({"model": TINY, "train": {"device": "cpu", "max_steps": 1}}))
    drain(pretrain(GraphDataset.load(tmp_path / "a.pt"), config, tmp_path / "run"))
    measured = pooled_measurements(GraphDataset.load(tmp_path / "a.pt"))
    hmgdm("embed", tmp_path / "run", tmp_path / "a.pt", "--out", tmp_path / "plain.npz")
    result = hmgdm("embed", tmp_path / "run", tmp_path / "a.pt", "--out", tmp_path / "hybrid.npz", "--measurements")
    assert f"(the last {measured.shape[1]} pooled measurements)" in result.stdout
    with np.load(tmp_path / "plain.npz") as plain, np.load(tmp_path / "hybrid.npz") as hybrid:
        width = plain["embeddings"].shape[1]
        assert int(hybrid["measurement_columns"]) == measured.shape[1] and "measurement_columns" not in plain.files
        np.testing.assert_allclose(hybrid["embeddings"][:, :width], plain["embeddings"], rtol=1e-6)
        np.testing.assert_array_equal(hybrid["embeddings"][:, width:], measured)
    # A folder of files: a finished file without measurements is redone when they are asked for, then skipped.
    hmgdm("embed", tmp_path / "run", tmp_path / "a.pt", "--out", tmp_path / "folder")
    result = hmgdm("embed", tmp_path / "run", tmp_path / "a.pt", "--out", tmp_path / "folder", "--measurements")
    assert "1 built, 0 already done" in result.stdout
    with np.load(tmp_path / "folder" / "a.npz") as f:
        assert f["embeddings"].shape[1] == width + measured.shape[1]
    result = hmgdm("embed", tmp_path / "run", tmp_path / "a.pt", "--out", tmp_path / "folder", "--measurements")
    assert "0 built, 1 already done" in result.stdout
    result = hmgdm("embed", tmp_path / "run", tmp_path / "a.pt", "--out", tmp_path / "pooled.npz", "--pool", "mean",
                   "--measurements")
    with np.load(tmp_path / "pooled.npz") as f:
        np.testing.assert_allclose(f["embeddings"][0, width:], measured.mean(0), rtol=1e-5)


def test_embed_readout_is_recorded_and_a_file_of_another_readout_is_redone(tmp_path, small_patch_graphs):
    from hmgdm_core.cli import build_parser
    from hmgdm_core.embed import DEFAULT_READOUT, READOUTS, embed_dataset

    # The CLI spells the readouts out (no network import for `--help`): they must be the library's.
    parse = build_parser().parse_args
    assert parse(["embed", "run", "a.pt", "--out", "x.npz"]).readout == DEFAULT_READOUT
    assert [parse(["embed", "run", "a.pt", "--out", "x.npz", "--readout", r]).readout for r in READOUTS] == [*READOUTS]
    GraphDataset.from_graphs(small_patch_graphs).save(tmp_path / "a.pt")
    config = PretrainConfig.from_json(json.dumps({"model": TINY, "train": {"device": "cpu", "max_steps": 1}}))
    drain(pretrain(GraphDataset.load(tmp_path / "a.pt"), config, tmp_path / "run"))
    model = load_checkpoint(tmp_path / "run").model
    hmgdm("embed", tmp_path / "run", tmp_path / "a.pt", "--out", tmp_path / "mu.npz", "--readout", "mu")
    with np.load(tmp_path / "mu.npz") as f:
        assert str(f["readout"]) == "mu"
        expected = embed_dataset(model, small_patch_graphs, device="cpu", readout="mu").patch
        np.testing.assert_allclose(f["embeddings"], expected, rtol=1e-5, atol=1e-6)
    # A folder of files: a file of the default readout is redone for another one, then skipped.
    hmgdm("embed", tmp_path / "run", tmp_path / "a.pt", "--out", tmp_path / "folder")
    with np.load(tmp_path / "folder" / "a.npz") as f:
        assert str(f["readout"]) == DEFAULT_READOUT
        first = f["embeddings"]
    np.testing.assert_allclose(first, embed_dataset(model, small_patch_graphs, device="cpu").patch, rtol=1e-5,
                               atol=1e-6)
    result = hmgdm("embed", tmp_path / "run", tmp_path / "a.pt", "--out", tmp_path / "folder", "--readout", "mu")
    assert "1 built, 0 already done" in result.stdout
    with np.load(tmp_path / "folder" / "a.npz") as f:
        np.testing.assert_allclose(f["embeddings"], expected, rtol=1e-5, atol=1e-6)
    result = hmgdm("embed", tmp_path / "run", tmp_path / "a.pt", "--out", tmp_path / "folder", "--readout", "mu")
    assert "0 built, 1 already done" in result.stdout


def test_export_refuses_an_existing_file_or_a_folder(tmp_path, sample_svs):
    from hmgdm_core.graph import GraphConfig, build_graph, save_graph
    from hmgdm_core.io import open_slide

    with open_slide(sample_svs) as slide:
        save_graph(build_graph(slide, slide.region(1500, 800, 160, 160), GraphConfig()), tmp_path / "g.pt")
    (tmp_path / "old.geojson").write_text("keep me")
    result = hmgdm("export", tmp_path / "g.pt", "--out", tmp_path / "old.geojson", status=2)
    assert "exists: pass --overwrite" in result.stderr and (tmp_path / "old.geojson").read_text() == "keep me"
    result = hmgdm("export", tmp_path / "g.pt", "--out", tmp_path, status=2)
    assert "is a folder" in result.stderr
    hmgdm("export", tmp_path / "g.pt", "--out", tmp_path / "old.geojson", "--overwrite")
    assert json.loads((tmp_path / "old.geojson").read_text())["type"] == "FeatureCollection"


def test_corrupt_svs_tiles_give_one_line(tmp_path, sample_svs):
    import tifffile

    path = tmp_path / "corrupt.svs"
    shutil.copy(sample_svs, path)
    with tifffile.TiffFile(path) as tif:
        offsets, counts = tif.pages[0].dataoffsets, tif.pages[0].databytecounts
    with path.open("r+b") as fh:
        for offset, count in list(zip(offsets, counts, strict=True))[::3]:
            fh.seek(offset + 10)
            fh.write(b"\xff" * min(200, count - 20))
    result = hmgdm("graph", path, "--out", tmp_path / "g.pt", status=2)
    assert "could not decode pixels" in result.stderr
    assert len(result.stderr.splitlines()) == 1  # not ~320 lines of zarr's asyncio tasks


def _checkpoint(tmp_path, small_patch_graphs):
    config = PretrainConfig.from_json(json.dumps({"model": TINY, "train": {"device": "cpu", "max_steps": 1}}))
    drain(pretrain(small_patch_graphs, config, tmp_path / "run"))
    return next((tmp_path / "run").glob("checkpoint-*.pt"))


def test_damaged_checkpoints_and_vae_files_are_input_errors(tmp_path, small_patch_graphs):
    from hmgdm_core.vae import load_entity_vae

    good = _checkpoint(tmp_path, small_patch_graphs)
    payload = torch.load(good, weights_only=True)
    no_optimiser = {k: v for k, v in payload.items() if k != "optimizer"}
    torch.save(no_optimiser, tmp_path / "no-opt.pt")
    with pytest.raises(InputError, match=r"incomplete checkpoint \(no valid optimizer\)"):
        load_checkpoint(tmp_path / "no-opt.pt")
    reshaped = {**payload, "model": {k: (v[:1] if v.ndim else v) for k, v in payload["model"].items()}}
    torch.save(reshaped, tmp_path / "shapes.pt")
    with pytest.raises(InputError, match="weights do not fit its own model config"):
        load_checkpoint(tmp_path / "shapes.pt")
    (tmp_path / "vae.pt").write_bytes(good.read_bytes()[:5000])
    with pytest.raises(InputError, match="is not a readable entity VAE"):
        load_entity_vae(tmp_path / "vae.pt")
    # Through the CLI: a truncated vae.pt beside a checkpoint is one line, not a traceback.
    shutil.copy(tmp_path / "vae.pt", good.parent / "vae.pt")
    GraphDataset.from_graphs(small_patch_graphs).save(tmp_path / "g.pt")
    result = hmgdm("embed", good.parent, tmp_path / "g.pt", "--out", tmp_path / "e.npz", status=2)
    assert "is not a readable entity VAE" in result.stderr
