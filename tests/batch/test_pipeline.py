"""The done-when: `hmgdm pipeline` on two slides with a local Dask cluster, then resumed and extended."""

import json

import numpy as np

from hmgdm_core.batch import PipelineConfig, SlideGraphConfig, run_pipeline
from hmgdm_core.cli import main
from hmgdm_core.embed import DEFAULT_READOUT, patch_width
from hmgdm_core.graph import GraphDataset
from hmgdm_core.model import ModelConfig
from hmgdm_core.train import PretrainConfig, TrainConfig, load_checkpoint

TINY = {"embed_dim": 32, "hidden_dim": 16, "latent_mlp_dim": 8, "time_mlp_dim": 32, "block_mlp_dim": 16}


def test_pipeline_on_two_slides_with_a_local_cluster(sample_svs, crop_slide, tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model": TINY, "train": {"lr": 1e-3}}))
    out = tmp_path / "run"
    argv = ["pipeline", str(sample_svs), str(crop_slide), "--out", str(out), "--config", str(config),
            "--steps", "2", "--batch-size", "4", "--device", "cpu"]
    # One command: the pipeline starts a dask.distributed LocalCluster of worker processes and closes it.
    assert main([*argv, "--scheduler", "cluster", "--workers", "2"]) == 0
    printed = capsys.readouterr().out
    assert "slides: 2 built, 0 already done, 0 failed" in printed and "embeddings: 2 built" in printed

    names = ["CMU-1-Small-Region", "crop"]
    graphs = {n: GraphDataset.load(out / "graphs" / f"{n}.pt") for n in names}
    assert all(len(d) > 0 for d in graphs.values())
    assert {g.group for n in names for g in graphs[n]} == set(names)
    checkpoint = load_checkpoint(out / "pretrain")
    assert checkpoint.meta["step"] == 2 and checkpoint.config.model.hidden_dim == 16
    for name in names:
        with np.load(out / "embeddings" / f"{name}.npz") as f:
            assert f["embeddings"].shape == (len(graphs[name]), patch_width(DEFAULT_READOUT, 16))
            assert np.isfinite(f["embeddings"]).all()
            assert f["boxes"].shape == (len(graphs[name]), 4) and set(f["groups"]) == {name}
            assert str(f["checkpoint"]).endswith("checkpoint-00000002.pt")

    # A re-run with more steps skips the graphs, resumes the training at step 2 and redoes the embeddings.
    stamps = {n: (out / "graphs" / f"{n}.pt").stat().st_mtime_ns for n in names}
    assert main([*argv[:-6], "--steps", "3", "--batch-size", "4", "--device", "cpu", "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    assert "slides: 0 built, 2 already done" in printed and "embeddings: 2 built" in printed
    assert stamps == {n: (out / "graphs" / f"{n}.pt").stat().st_mtime_ns for n in names}
    assert sorted(p.name for p in (out / "pretrain").glob("checkpoint-*.pt")) == [  # a --steps run saves each tenth
        "checkpoint-00000001.pt", "checkpoint-00000002.pt", "checkpoint-00000003.pt"]
    for name in names:
        with np.load(out / "embeddings" / f"{name}.npz") as f:
            assert str(f["checkpoint"]).endswith("checkpoint-00000003.pt")


def test_rerun_of_a_finished_pipeline_changes_nothing(regions_csv, tmp_path):
    train = TrainConfig(batch_size=4, max_steps=1, device="cpu")
    config = PipelineConfig(SlideGraphConfig(), PretrainConfig(model=ModelConfig(**TINY), train=train))
    stages = []
    first = run_pipeline([regions_csv], tmp_path / "run", config, progress=lambda *a: stages.append(a[0]))
    assert {"slides", "patches", "pretrain", "datasets", "graphs"} <= set(stages) and not first.failed
    files = sorted(p for p in (tmp_path / "run").rglob("*") if p.suffix in (".pt", ".npz"))
    stamps = [p.stat().st_mtime_ns for p in files]
    again = run_pipeline([regions_csv], tmp_path / "run", config)
    assert {r.status for r in again.graphs + again.embeddings} == {"skipped"}
    assert again.checkpoint == first.checkpoint
    assert stamps == [p.stat().st_mtime_ns for p in files]
    with np.load(tmp_path / "run" / "embeddings" / "cmu_1280_768_600_600.npz") as f:
        assert set(f["labels"]) == {0} and set(f["groups"]) == {"case0"}
