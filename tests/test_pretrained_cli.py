"""``hmgdm pretrained``, ``hmgdm embed NAME`` and ``hmgdm pretrain --init NAME``, as a user runs them."""

import csv
import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from hmgdm_core.embed import DEFAULT_READOUT, patch_width
from hmgdm_core.graph import GraphConfig
from hmgdm_core.graph.dataset import dataset_from_folder
from hmgdm_core.pretrained import DEFAULT_PRETRAINED, load_pretrained, model_card
from hmgdm_core.train import load_checkpoint


def hmgdm(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([shutil.which("hmgdm"), *args], capture_output=True, text=True, env=env, cwd=cwd)


@pytest.fixture(scope="module")
def kather_graphs(kather_dir, tmp_path_factory):
    """Four Kather tiles of two classes as a dataset file (the bundled model's graph settings)."""
    with (kather_dir / "index.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    picked = [r for name in ("TUMOR", "LYMPHO") for r in [r for r in rows if r["class_name"] == name][:2]]
    folder = tmp_path_factory.mktemp("tiles")
    (folder / "index.csv").write_text(
        "path,class_index,slide\n"
        + "".join(f"{kather_dir / r['path']},{r['class_index']},{r['slide']}\n" for r in picked)
    )
    dataset = dataset_from_folder(folder, 0.495, GraphConfig(kind="tissue", restrict_to_tissue=False))
    return dataset.save(folder / "graphs.pt")


def test_list_and_info_show_the_card():
    listing = hmgdm("pretrained", "list")
    assert listing.returncode == 0, listing.stderr
    assert DEFAULT_PRETRAINED in listing.stdout and "CC BY 4.0" in listing.stdout
    card = model_card(DEFAULT_PRETRAINED)
    info = hmgdm("pretrained", "info", DEFAULT_PRETRAINED)
    assert info.returncode == 0, info.stderr
    for text in (card["sha256"], "Kather", "CC0 1.0", "attribution", "MoNuSeg", f"{card['steps']} steps"):
        assert text in info.stdout, text
    as_json = hmgdm("pretrained", "info", DEFAULT_PRETRAINED, "--json")
    assert json.loads(as_json.stdout) == card


def test_a_continued_model_card_shows_both_runs():
    from hmgdm_core.cli.pretrained import format_card

    card = model_card(DEFAULT_PRETRAINED)
    first = {"steps": 100, "date": "2026-01-01 00:00 UTC", "hardware": "cuda", "command": "python first.py"}
    continued = {
        **card,
        "steps": 150,
        "wall_time_s": 400.0,
        "init": {"from": "earlier", "sha256": "ab" * 32, **first, "steps_this_run": 50, "wall_time_s_this_run": 300.0},
    }
    text = format_card(continued)
    assert "150 steps" in text and "400 s in all" in text and "this run 50 steps in 300 s" in text
    assert "started from  earlier (sha256 abababababab…): 100 steps on cuda, 2026-01-01 00:00 UTC" in text
    assert "python first.py" in text and ("started from" in format_card(card)) == ("init" in card)


def test_unknown_name_is_one_line_and_status_2():
    result = hmgdm("pretrained", "info", "no-such-model")
    assert result.returncode == 2
    assert result.stderr.startswith("hmgdm pretrained: error: no bundled model") and result.stderr.count("\n") == 1


def test_embed_accepts_a_bundled_name(kather_graphs, tmp_path):
    result = hmgdm("embed", DEFAULT_PRETRAINED, str(kather_graphs), "--out", str(tmp_path / "e.npz"), "--device", "cpu")
    assert result.returncode == 0, result.stderr
    hidden = load_pretrained(DEFAULT_PRETRAINED).config.model.hidden_dim
    with np.load(tmp_path / "e.npz") as f:
        assert f["embeddings"].shape == (4, patch_width(DEFAULT_READOUT, hidden)) and np.isfinite(f["embeddings"]).all()


def test_pretrain_init_continues_from_the_bundled_model(kather_graphs, tmp_path):
    out = tmp_path / "run"
    args = ("--steps", "2", "--batch-size", "2", "--device", "cpu")
    result = hmgdm("pretrain", str(kather_graphs), "--out", str(out), "--init", DEFAULT_PRETRAINED, *args)
    assert result.returncode == 0, result.stderr
    state = load_checkpoint(out)
    bundled = load_pretrained(DEFAULT_PRETRAINED)
    assert state.meta["step"] == 2 and state.meta["init"].endswith(f"{DEFAULT_PRETRAINED}.pt")
    assert state.config.model == bundled.config.model and state.config.diffusion == bundled.config.diffusion
    assert state.config.train.max_steps == 2
    # Two Adam steps moved the weights away from the bundled ones, but only a little.
    before = bundled.model.state_dict()["node_embedding.lin.weight"]
    after = state.model.state_dict()["node_embedding.lin.weight"]
    assert 0 < (after - before).abs().max() < 0.1 * before.abs().max()
    both = hmgdm(
        "pretrain",
        str(kather_graphs),
        "--out",
        str(tmp_path / "x"),
        "--init",
        DEFAULT_PRETRAINED,
        "--resume",
        str(out),
        *args,
    )
    assert both.returncode == 2 and "--init" in both.stderr
