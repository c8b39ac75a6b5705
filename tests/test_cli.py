"""The hmgdm command line: info, demo and error handling."""

import json
import shutil
import subprocess
import sys

import imageio.v3 as iio
import numpy as np

from hmgdm_core.cli import main
from hmgdm_core.demo import run_demo
from hmgdm_core.downstream import ClassificationData, SurvivalData, save_classification_npz, save_survival_npz
from hmgdm_core.embed import DEFAULT_READOUT, patch_width
from hmgdm_core.graph import GraphDataset, load_graph
from hmgdm_core.pretrained import DEFAULT_PRETRAINED, load_pretrained
from hmgdm_core.train import load_checkpoint


def test_info_text_and_json(capsys):
    assert main(["info"]) == 0
    text = capsys.readouterr().out
    assert "torch" in text and "torch-geometric" in text and "logical cores" in text and "cuda" in text
    assert main(["info", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["packages"]["torch"].startswith("2.")
    assert report["cuda"]["available"] in (True, False)
    assert report["cpu"]["logical_cores"] >= 1
    assert report["cpu"]["native_bf16"] in (True, False)
    assert "bf16 in hardware" in text


def test_console_script_is_installed():
    exe = shutil.which("hmgdm")
    assert exe is not None
    result = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.startswith("hmgdm ")


def test_building_the_parser_does_not_look_the_version_up():
    # importlib.metadata was about half of `hmgdm --help`'s start-up; only --version needs it.
    code = "import sys; "
    code += "from hmgdm_core.cli import build_parser; build_parser(); print('importlib.metadata' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_demo_runs_the_pipeline(tmp_path):
    lines = []
    summary = run_demo(tmp_path, steps=24, echo=lines.append)
    out = "\n".join(lines)
    assert summary["loss_last"] < summary["loss_first"]
    assert "level 0      2967 x 2220 px" in out
    assert "0.4990 at level 0" in out
    assert "tissue" in out and "CC0" in out
    thumb = iio.imread(tmp_path / "thumbnail.png")
    assert thumb.shape == (1024, 766, 3)
    # The tissue outline is drawn in pure green.
    assert ((thumb == (0, 200, 0)).all(axis=-1)).sum() > 100
    for kind in ("nuclei", "tissue"):
        graph = load_graph(tmp_path / f"{kind}_graph.pt")
        assert graph.kind == kind and graph.num_nodes > 100
        assert f"{kind} graph: {graph.num_nodes} nodes" in out
    assert "step  20" in out and "lower) in" in out
    assert load_checkpoint(next((tmp_path / "pretrain").glob("checkpoint-*24.pt"))).meta["step"] == 24
    with np.load(tmp_path / "embeddings.npz") as f:
        assert f["embeddings"].ndim == 2 and np.isfinite(f["embeddings"]).all()
    # The embeddings come from the bundled model, and the report says so.
    assert summary["embedding_model"] == DEFAULT_PRETRAINED and f"bundled pre-trained model {DEFAULT_PRETRAINED}" in out
    with np.load(tmp_path / "embeddings.npz") as f:
        hidden = load_pretrained(DEFAULT_PRETRAINED).config.model.hidden_dim
        assert f["embeddings"].shape[1] == patch_width(DEFAULT_READOUT, hidden)


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--slide", str(tmp_path / "missing.svs")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hmgdm demo: error:") and "no such file" in err


def test_classify_command(tmp_path, capsys):
    rng = np.random.default_rng(0)
    labels = np.repeat(["tumour", "stroma", "lympho"], 40)
    centres = {"tumour": 0.0, "stroma": 3.0, "lympho": 6.0}
    embeddings = np.stack([rng.normal(centres[c], 1.0, 8) for c in labels]).astype(np.float32)
    groups = np.array([f"slide{i % 10}" for i in range(len(labels))])
    save_classification_npz(tmp_path / "emb.npz", ClassificationData(embeddings, labels, groups))
    assert main(["classify", str(tmp_path / "emb.npz"), "--out", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "macro" in out.lower()
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["summary"]["accuracy"]["mean"] > 0.9


def test_survival_command(tmp_path, capsys):
    rng = np.random.default_rng(1)
    risk = rng.normal(size=60)
    bags = [rng.normal(size=(12, 6)) + risk[i] * np.eye(6)[0] for i in range(60)]
    times = rng.exponential(np.exp(-1.5 * risk)) + 0.01
    events = (rng.random(60) < 0.8).astype(np.int64)
    data = SurvivalData(bags, times, events, np.array([f"p{i}" for i in range(60)]))
    save_survival_npz(tmp_path / "cohort.npz", data)
    argv = ["survival", str(tmp_path / "cohort.npz"), "--folds", "3", "--epochs", "15",
            "--plot", str(tmp_path / "km.png"), "--out", str(tmp_path / "s.json")]
    assert main(argv) == 0
    assert "c-index" in capsys.readouterr().out.lower()
    assert iio.imread(tmp_path / "km.png").ndim == 3
    assert 0.0 <= json.loads((tmp_path / "s.json").read_text())["pooled_cindex"] <= 1.0


def test_classify_bad_file(tmp_path, capsys):
    np.savez(tmp_path / "bad.npz", embeddings=np.zeros((4, 2)))
    assert main(["classify", str(tmp_path / "bad.npz")]) == 2
    assert "labels" in capsys.readouterr().err


def test_graph_pretrain_embed_classify_chain(tmp_path, kather_dir, capsys):
    """The CLI end to end on 36 real Kather tiles: folder -> graphs -> pretrain -> embed -> classify."""
    import csv
    import shutil

    rows = list(csv.DictReader((kather_dir / "index.csv").open()))
    chosen = []
    for cls in ("1", "4", "7"):  # tumour, lymphocytes, adipose: 12 tiles each from distinct slides first
        of_class = [r for r in rows if r["class_index"] == cls]
        seen, picked = set(), []
        for r in of_class:
            if r["slide"] not in seen or len(seen) >= 4:
                seen.add(r["slide"])
                picked.append(r)
            if len(picked) == 12:
                break
        chosen += picked
    tiles = tmp_path / "tiles"
    for r in chosen:
        (tiles / r["path"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(kather_dir / r["path"], tiles / r["path"])
    with (tiles / "index.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(chosen)

    assert main(["graph", str(tiles), "--folder", "--mpp", "0.495", "--out", str(tmp_path / "g.pt")]) == 0
    assert "36 tissue graphs" in capsys.readouterr().out
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model": {"embed_dim": 32, "hidden_dim": 16, "latent_mlp_dim": 8,
                                            "time_mlp_dim": 32, "block_mlp_dim": 16}}))
    argv = ["pretrain", str(tmp_path / "g.pt"), "--out", str(tmp_path / "run"), "--config", str(config),
            "--steps", "3", "--batch-size", "4", "--device", "cpu"]
    assert main(argv) == 0
    assert "finished at step 3" in capsys.readouterr().out
    checkpoint = next((tmp_path / "run").glob("checkpoint-*3.pt"))
    assert main(["embed", str(checkpoint), str(tmp_path / "g.pt"), "--out", str(tmp_path / "e.npz"),
                 "--device", "cpu"]) == 0
    assert "ready for `hmgdm classify`" in capsys.readouterr().out
    with np.load(tmp_path / "e.npz") as f:
        assert f["embeddings"].shape[0] == 36 and set(f["labels"]) == {1, 4, 7}
    assert main(["classify", str(tmp_path / "e.npz"), "--folds", "2"]) == 0
    assert "accuracy" in capsys.readouterr().out


def test_export_command(tmp_path, sample_svs, capsys):
    from hmgdm_core.graph import GraphConfig, build_graph, save_graph
    from hmgdm_core.io import open_slide
    from hmgdm_core.io.qupath import read_qupath

    with open_slide(sample_svs) as slide:
        graph = build_graph(slide, slide.region(1500, 800, 256, 256), GraphConfig(kind="nuclei"))
    save_graph(graph, tmp_path / "g.pt")
    assert main(["export", str(tmp_path / "g.pt"), "--out", str(tmp_path / "g.geojson")]) == 0
    assert f"{graph.num_nodes} nodes" in capsys.readouterr().out
    objects = read_qupath(tmp_path / "g.geojson", image_shape=(2967, 2220))
    assert sum(o.object_type == "detection" for o in objects) == graph.num_nodes
    assert main(["export", str(tmp_path / "g.pt"), "--out", str(tmp_path / "g.json"), "--format", "tiatoolbox"]) == 0
    tia = json.loads((tmp_path / "g.json").read_text())
    assert len(tia["coordinates"]) == graph.num_nodes and len(tia["edge_index"]) == 2


def test_graph_pretrain_embed_over_many_regions(tmp_path, sample_svs, capsys, monkeypatch):
    """One region to one file; a CSV of regions to a folder; pretrain on the folder; embed it, resumably."""
    (tmp_path / "regions.csv").write_text(
        f"slide,y,x,height,width,label\n{sample_svs},1280,768,600,600,0\n{sample_svs},1792,1024,600,600,1\n"
    )
    region = ["--region", "1280", "768", "600", "600"]
    assert main(["graph", str(sample_svs), *region, "--out", str(tmp_path / "one.pt")]) == 0
    assert "tissue graphs (" in capsys.readouterr().out
    assert main(["graph", str(tmp_path / "regions.csv"), "--out", str(tmp_path / "two.pt")]) == 2
    assert "give --out a folder" in capsys.readouterr().err
    assert main(["graph", str(tmp_path / "regions.csv"), "--out", str(tmp_path / "graphs")]) == 0
    assert "slides: 2 built" in capsys.readouterr().out
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model": {"embed_dim": 32, "hidden_dim": 16, "latent_mlp_dim": 8,
                                            "time_mlp_dim": 32, "block_mlp_dim": 16}}))
    monkeypatch.setenv("RANK", "1")  # a torchrun rank other than 0 prints nothing
    argv = ["pretrain", str(tmp_path / "graphs"), "--out", str(tmp_path / "run"), "--config", str(config),
            "--steps", "1", "--batch-size", "2", "--device", "cpu"]
    assert main(argv) == 0
    assert capsys.readouterr().out == ""
    monkeypatch.delenv("RANK")
    argv = ["embed", str(tmp_path / "run"), str(tmp_path / "graphs"), "--out", str(tmp_path / "emb"), "--device", "cpu"]
    assert main(argv) == 0
    assert "datasets: 2 built" in capsys.readouterr().out
    one = GraphDataset.load(tmp_path / "graphs" / f"{sample_svs.stem}_1280_768_600_600.pt")
    with np.load(tmp_path / "emb" / f"{sample_svs.stem}_1280_768_600_600.npz") as f:
        assert f["embeddings"].shape == (len(one), patch_width(DEFAULT_READOUT, 16)) and set(f["labels"]) == {0}
    assert main(argv) == 0
    assert "datasets: 0 built, 2 already done" in capsys.readouterr().out
    assert main(["embed", str(tmp_path / "run"), str(tmp_path / "one.pt"), "--out", str(tmp_path / "one.npz")]) == 0
    with np.load(tmp_path / "one.npz") as f:
        assert f["embeddings"].shape == (len(GraphDataset.load(tmp_path / "one.pt")), patch_width(DEFAULT_READOUT, 16))
    assert main(["embed", str(tmp_path / "run"), str(tmp_path / "graphs"), "--out", str(tmp_path / "all.npz")]) == 0
    assert "ready for `hmgdm classify`" in capsys.readouterr().out
    with np.load(tmp_path / "all.npz") as f:
        total = sum(len(GraphDataset.load(p)) for p in (tmp_path / "graphs").glob("*.pt"))
        assert f["embeddings"].shape == (total, patch_width(DEFAULT_READOUT, 16)) and set(f["labels"]) == {0, 1}
