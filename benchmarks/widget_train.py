"""Training widget throughput: graphs per second of *Train on selected region*'s default CPU run on the sample.

Runs the job the widget runs (``napari_hmgdm._train_job.train_job``, no Qt) on the whole sample slide as the
selected region (tissue graphs of 256-px patches read at 1 µm/px, patches of bare glass left out; the widget's
batch of 8 and optimiser defaults), twice in the same run:

- ``default``: what *Train* does today, continuing the bundled model (its network, masking and noise);
- ``paper from scratch`` (the baseline): the widget's default when the throughput issue was filed, the
  released network at the paper's widths from random weights (today's ``paper`` preset);
- ``fast from scratch``: the widget's ``fast`` recipe (hidden 64, one joint layer, its learning rate).

Throughput is the median over the steps after the first (warm-up) of each step's graphs per second, with torch
threads set as the widget sets them (all cores but one). Prints a table, then one JSON line.

    OMP_NUM_THREADS=1 python benchmarks/widget_train.py --quick
    OMP_NUM_THREADS=1 python benchmarks/widget_train.py --steps 12
"""

import argparse
import json
import os
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from hmgdm_core.graph import GraphConfig
from hmgdm_core.io import open_slide
from hmgdm_core.pretrained import DEFAULT_PRETRAINED, pretrained_config, pretrained_path
from hmgdm_core.sample import sample_slide_path
from hmgdm_core.train import CancelToken, PretrainConfig, StepDone
from napari_hmgdm._train_job import WIDGET_TRAIN_DEFAULTS, TrainRequest, train_job

PATCH = 256
MPP = 1.0


def request(name: str, steps: int, out: Path) -> TrainRequest:
    """The widget's request for the sample region under the setup ``name``."""
    train = replace(WIDGET_TRAIN_DEFAULTS, max_steps=steps, device="cpu")
    init = None
    if name == "default":
        config = replace(pretrained_config(DEFAULT_PRETRAINED), train=train)
        init = pretrained_path(DEFAULT_PRETRAINED)
    else:
        preset = PretrainConfig.preset(name.split()[0])
        # Choosing a recipe in the widget also sets its learning rate.
        config = replace(preset, train=replace(train, lr=preset.train.lr))
    with open_slide(sample_slide_path()) as slide:
        region = slide.region(0, 0, *slide.shape, mpp=MPP)
        base_mpp = slide.mpp
    return TrainRequest(
        slide_path=str(sample_slide_path()),
        slide_mpp=base_mpp,
        region=region,
        patch_size=PATCH,
        graph_config=GraphConfig(kind="tissue"),
        pretrain_config=config,
        out_dir=out / name.replace(" ", "-"),
        init=init,
    )


def run(name: str, steps: int, out: Path) -> dict:
    """Graphs per second of every step, time to the first step and the graphs' sizes for one setup."""
    start, first, rates, graphs = time.perf_counter(), None, [], None
    for item in train_job(request(name, steps, out), CancelToken(), min_interval_s=0.0):
        if hasattr(item, "records"):
            graphs = [g.num_nodes for g in item]
        for event in item if isinstance(item, list) else [item]:
            if isinstance(event, StepDone):
                first = first or time.perf_counter() - start
                rates.append(event.graphs_per_second)
    return {"rates": rates, "first_step_s": first, "graphs": len(graphs), "mean_nodes": statistics.mean(graphs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12, help="training steps of each setup (the first is warm-up)")
    parser.add_argument("--quick", action="store_true", help="3 steps each, to check that it runs")
    args = parser.parse_args()
    steps = 3 if args.quick else args.steps
    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))  # as the widget does
    out = Path(tempfile.mkdtemp(prefix="hmgdm-widget-train-"))
    results = {}
    for name in ("paper from scratch", "default", "fast from scratch"):
        found = run(name, steps, out)
        found["median_graphs_per_s"] = statistics.median(found["rates"][1:])
        results[name] = found
    base = results["paper from scratch"]["median_graphs_per_s"]
    print(
        f"whole sample slide at {MPP} µm/px: {results['default']['graphs']} tissue "
        f"patch graphs of {PATCH} px (mean {results['default']['mean_nodes']:.0f} nodes), batch "
        f"{WIDGET_TRAIN_DEFAULTS.batch_size}, {steps} steps, {torch.get_num_threads()} torch thread(s)"
    )
    print(f"{'setup':<20} {'graphs/s (median)':>18} {'first step after s':>19} {'vs baseline':>12}")
    for name, found in results.items():
        ratio = found["median_graphs_per_s"] / base
        print(f"{name:<20} {found['median_graphs_per_s']:>18.2f} {found['first_step_s']:>19.1f} {ratio:>11.2f}x")
    summary = {
        "benchmark": "widget_train",
        "baseline": "paper from scratch",
        "steps": steps,
        "results": {n: {k: v for k, v in r.items() if k != "rates"} for n, r in results.items()},
        "ratio_vs_baseline": {n: r["median_graphs_per_s"] / base for n, r in results.items()},
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
