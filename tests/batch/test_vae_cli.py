"""`hmgdm pretrain --vae` fits the entity VAE into the run folder; `hmgdm embed` then reads through it."""

import json

import numpy as np
import pytest

from hmgdm_core.cli import main
from hmgdm_core.embed import DEFAULT_READOUT, embed_dataset, patch_width
from hmgdm_core.graph import GraphDataset
from hmgdm_core.train import load_checkpoint
from hmgdm_core.vae import load_entity_vae, model_inputs

TINY = {"embed_dim": 32, "hidden_dim": 16, "latent_mlp_dim": 8, "time_mlp_dim": 32, "block_mlp_dim": 16}


@pytest.fixture()
def graphs_file(tmp_path, sample_svs):
    out = tmp_path / "one.pt"
    assert main(["graph", str(sample_svs), "--region", "1280", "768", "600", "600", "--out", str(out)]) == 0
    return out


def test_latent_pretraining_and_embedding_go_through_the_runs_vae(graphs_file, tmp_path, capsys, monkeypatch):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model": TINY}))
    # The default latent width (12 channels at 16², 3072 numbers) with a narrow, fast network.
    vae_config = tmp_path / "vae.json"
    vae_config.write_text(json.dumps({"steps": 2, "base_channels": 4, "batch_size": 64}))
    run = tmp_path / "run"
    monkeypatch.setenv("WORLD_SIZE", "2")  # under torchrun the VAE must exist already: each rank would fit its own
    base = ["pretrain", str(graphs_file), "--out", str(run), "--config", str(config), "--batch-size", "2",
            "--device", "cpu", "--vae", "--vae-config", str(vae_config)]
    assert main([*base, "--steps", "1"]) == 2
    assert "fit the entity VAE in one process first" in capsys.readouterr().err and not run.exists()
    monkeypatch.delenv("WORLD_SIZE")

    # --vae --steps 0 fits the VAE only (the step to take before torchrun); no pre-training step runs.
    fitted_only = tmp_path / "vae-only"
    assert main([*base[:2], "--out", str(fitted_only), *base[4:], "--steps", "0"]) == 0
    assert (fitted_only / "vae.pt").is_file() and not list(fitted_only.glob("checkpoint-*.pt"))
    capsys.readouterr()

    assert main([*base, "--steps", "1"]) == 0
    assert "entity VAE written" in capsys.readouterr().out
    vae = load_entity_vae(run / "vae.pt")
    assert vae.config.base_channels == 4 and vae.config.latent_dim == 3072
    state = load_checkpoint(run)
    assert state.config.model.feature_dim == vae.config.latent_dim and state.meta["step"] == 1
    stamp = (run / "vae.pt").stat().st_mtime_ns
    assert main([*base, "--steps", "2", "--resume", str(run)]) == 0
    assert "entity VAE written" not in capsys.readouterr().out
    assert (run / "vae.pt").stat().st_mtime_ns == stamp and load_checkpoint(run).meta["step"] == 2

    assert main(["embed", str(run), str(graphs_file), "--out", str(tmp_path / "e.npz"), "--device", "cpu"]) == 0
    dataset = GraphDataset.load(graphs_file)
    model = load_checkpoint(run).model
    latents = model_inputs(vae.config.latent_dim, run / "checkpoint-00000002.pt").graphs(dataset)
    with np.load(tmp_path / "e.npz") as f:
        written = f["embeddings"]
    assert np.allclose(written, embed_dataset(model, latents, device="cpu").patch, atol=1e-5)
    # Raw windows have as many numbers as these latents (3072), so only the VAE beside the checkpoint tells them apart.
    assert not np.allclose(written, embed_dataset(model, dataset, device="cpu").patch, atol=1e-3)


def test_a_bad_vae_config_is_refused_before_any_work(graphs_file, tmp_path, capsys):
    bad = tmp_path / "vae.json"
    bad.write_text(json.dumps({"stepz": 2}))
    argv = ["pretrain", str(graphs_file), "--out", str(tmp_path / "run"), "--vae", "--vae-config", str(bad)]
    assert main(argv) == 2
    assert "--vae-config" in capsys.readouterr().err and not (tmp_path / "run" / "vae.pt").exists()


def test_pipeline_pretrains_on_the_latents_of_its_entity_vae(regions_csv, tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model": TINY}))
    vae_config = tmp_path / "vae.json"
    vae_config.write_text(json.dumps({"steps": 2, "base_channels": 4, "batch_size": 64, "latent_channels": 2}))
    out = tmp_path / "study"
    argv = ["pipeline", str(regions_csv), "--out", str(out), "--config", str(config), "--steps", "1",
            "--batch-size", "2", "--device", "cpu", "--vae", "--vae-config", str(vae_config)]
    assert main(argv) == 0
    vae = load_entity_vae(out / "pretrain" / "vae.pt")
    assert load_checkpoint(out / "pretrain").config.model.feature_dim == vae.config.latent_dim == 2 * 16 * 16
    embeddings = sorted((out / "embeddings").glob("*.npz"))
    assert len(embeddings) == 2
    with np.load(embeddings[0]) as f:
        assert f["embeddings"].shape[1] == patch_width(DEFAULT_READOUT, TINY["hidden_dim"])
        assert np.isfinite(f["embeddings"]).all()
    # A longer run reuses the VAE (same latents), so the pre-training resumes instead of refusing the data.
    stamp = (out / "pretrain" / "vae.pt").stat().st_mtime_ns
    assert main([*argv[:7], "2", *argv[8:]]) == 0
    assert (out / "pretrain" / "vae.pt").stat().st_mtime_ns == stamp
    assert load_checkpoint(out / "pretrain").meta["step"] == 2
