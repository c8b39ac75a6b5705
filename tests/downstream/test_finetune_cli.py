import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from hmgdm_core.graph import GraphConfig
from hmgdm_core.graph.dataset import dataset_from_folder
from hmgdm_core.model import ModelConfig
from hmgdm_core.train import PretrainConfig, TrainConfig, pretrain

SMALL = ModelConfig(embed_dim=32, hidden_dim=16, latent_mlp_dim=8, time_mlp_dim=32, block_mlp_dim=8, head_dims=(16, 32))


def test_hmgdm_finetune_cross_validates_on_real_kather_tiles(kather_dir, tmp_path):
    # Two classes, four tiles of each from four slides: 2 slide-grouped folds are possible.
    with (kather_dir / "index.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    picked = []
    for label in ("1", "4"):  # TUMOR, LYMPHO
        slides = set()
        for row in rows:
            if row["class_index"] == label and row["slide"] not in slides and len(slides) < 4:
                slides.add(row["slide"])
                picked.append({"path": str(kather_dir / row["path"]), "label": label, "group": row["slide"]})
    listing = tmp_path / "tiles.csv"
    with listing.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["path", "label", "group"])
        writer.writeheader()
        writer.writerows(picked)
    dataset = dataset_from_folder(
        tmp_path,
        0.495,
        GraphConfig(kind="tissue", restrict_to_tissue=False),
        index_csv=str(listing),
        label_column="label",
        group_column="group",
    )
    dataset.save(tmp_path / "tiles.pt")
    config = PretrainConfig(model=SMALL, train=TrainConfig(batch_size=4, max_steps=2, device="cpu"))
    list(pretrain(dataset, config, tmp_path / "run"))
    out = tmp_path / "finetune.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hmgdm_core.cli",
            "finetune",
            str(tmp_path / "run"),
            str(tmp_path / "tiles.pt"),
            "--folds",
            "2",
            "--validation-folds",
            "2",
            "--epochs",
            "2",
            "--batch-size",
            "4",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    assert report["method"] == "fine-tuned gated-attention classifier, standardised node and edge latents"
    accuracy = report["summary"]["accuracy"]["mean"]
    assert 0.0 <= accuracy <= 1.0
    # The paper's head on request; the report says which head it was.
    raw = subprocess.run(
        [*result.args[:-2], "--paper-head", "--out", str(tmp_path / "raw.json")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert raw.returncode == 0, raw.stdout + raw.stderr
    raw_report = json.loads((tmp_path / "raw.json").read_text())
    assert raw_report["method"] == "fine-tuned gated-attention classifier, the paper's head (raw node latents)"
    # Unlabelled or missing inputs are refused with a one-line message, not a traceback.
    bad = subprocess.run(
        [sys.executable, "-m", "hmgdm_core.cli", "finetune", str(tmp_path / "run"), str(tmp_path / "missing.pt")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
