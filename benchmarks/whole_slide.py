"""Whole-slide scale: slide → tissue → patch graphs → embeddings on pyramidal OME-TIFFs of growing area.

The slides are the bundled CMU-1 region tiled 1×1, 2×2 and 4×4 (1×, 4× and 16× its area), written as tiled
pyramidal OME-TIFFs. Each (size, scheduler) case runs in a fresh process, so its peak RSS is its own: the
``sync`` scheduler (one process, the baseline) and Dask ``processes`` (the case process's peak).
Stages: the tissue mask (from a low-resolution level), the patch graphs (``item_graphs``: tissue filter,
read, segment, build, all streamed patch by patch) and the embeddings (``embed_dataset`` with a checkpoint
pre-trained here for a few steps with the ``fast`` preset). The Dask workers' own peaks are not
reported (Linux counts a child's ``ru_maxrss`` from its fork, so it would repeat the parent's).
Prints a table, then one JSON line.

    OMP_NUM_THREADS=1 python benchmarks/whole_slide.py --quick
    OMP_NUM_THREADS=1 python benchmarks/whole_slide.py --scales 1 2 4 --workers 2
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from hmgdm_core.batch import SlideGraphConfig, SlideItem, TaskRunner, item_graphs
from hmgdm_core.embed import embed_dataset
from hmgdm_core.io import open_slide, write_ome_tiff
from hmgdm_core.sample import sample_slide_path
from hmgdm_core.tissue import compute_tissue_mask
from hmgdm_core.train import drain, load_checkpoint, pretrain
from hmgdm_core.train.config import PRESETS


def make_slide(scale: int, out: Path) -> tuple[Path, tuple[int, int]]:
    """The CMU-1 region tiled ``scale × scale`` as a pyramidal OME-TIFF; its path and level-0 shape."""
    with open_slide(sample_slide_path()) as slide:
        region = slide.full_region()
        image, mpp = slide.read(region), slide.mpp
    tiled = np.tile(image, (scale, scale, 1))
    path = write_ome_tiff(out / f"cmu1-x{scale * scale}.ome.tif", tiled, mpp)
    return path, tiled.shape[:2]


def train_checkpoint(slide: Path, config: SlideGraphConfig, out: Path, steps: int) -> Path:
    """A ``fast``-preset checkpoint trained for ``steps`` steps on the graphs of ``slide``."""
    dataset = item_graphs(SlideItem(slide), config)
    fast = PRESETS["fast"]
    run = replace(fast, train=replace(fast.train, batch_size=8, max_steps=steps, device="cpu"))
    return drain(pretrain(dataset, run, out)).checkpoint


def _peak_rss_gb() -> float:
    """This process's peak RSS (``VmHWM``): unlike ``ru_maxrss``, it does not inherit the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def run_case(slide: Path, scheduler: str, workers: int, checkpoint: Path, config: SlideGraphConfig) -> dict:
    """Stage timings and peak RSS of one slide with one scheduler (run in a fresh process)."""
    start = time.perf_counter()
    with open_slide(slide) as opened:
        compute_tissue_mask(opened)
    tissue_s = time.perf_counter() - start
    start = time.perf_counter()
    with TaskRunner(scheduler, workers) as runner:
        dataset = item_graphs(SlideItem(slide), config, runner)
    graphs_s = time.perf_counter() - start
    model = load_checkpoint(checkpoint).model
    start = time.perf_counter()
    embedding = embed_dataset(model, dataset, batch_size=32, device="cpu")
    embed_s = time.perf_counter() - start
    self_peak = _peak_rss_gb()
    return {
        "patches": len(dataset),
        "embedded": int(embedding.patch.shape[0]),
        "tissue_s": tissue_s,
        "graphs_s": graphs_s,
        "embed_s": embed_s,
        "graphs_per_s": len(dataset) / graphs_s,
        "embed_per_s": len(dataset) / embed_s,
        "peak_rss_gb": self_peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="scales 1 and 2 (1× and 4× area), 2 training steps")
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 2, 4], help="tiles per side (area: its square)")
    parser.add_argument("--schedulers", nargs="+", default=["sync", "processes"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20, help="pre-training steps of the checkpoint")
    parser.add_argument("--mpp", type=float, default=1.0)
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument(
        "--case", nargs=4, metavar=("SLIDE", "SCHEDULER", "WORKERS", "CHECKPOINT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    config = SlideGraphConfig(mpp=args.mpp, patch_size=args.patch)
    if args.case:
        slide, scheduler, workers, checkpoint = args.case
        print(json.dumps(run_case(Path(slide), scheduler, int(workers), Path(checkpoint), config)))
        return
    scales, steps = ([1, 2], 2) if args.quick else (args.scales, args.steps)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        slides = {s: make_slide(s, tmp) for s in scales}
        checkpoint = train_checkpoint(slides[scales[0]][0], config, tmp / "run", steps)
        for scale in scales:
            path, shape = slides[scale]
            for scheduler in args.schedulers:
                command = [sys.executable, __file__, "--case", str(path), scheduler, str(args.workers), str(checkpoint)]
                command += ["--mpp", str(args.mpp), "--patch", str(args.patch)]
                result = subprocess.run(command, capture_output=True, text=True, check=False)
                if result.returncode:
                    raise SystemExit(f"case {scale} {scheduler} failed:\n{result.stderr[-2000:]}")
                row = {"area": scale * scale, "shape": list(shape), "scheduler": scheduler}
                rows.append(row | json.loads(result.stdout.strip().splitlines()[-1]))
                print(rows[-1], file=sys.stderr, flush=True)
    print(
        "CMU-1 region tiled to 1×, 4×, 16× its area (level-0 2220 × 2967 px per tile); patches at "
        f"{args.mpp} µm/px, {args.patch} px"
    )
    print(
        f"{'area':>5} {'level-0 px':>13} {'scheduler':>10} {'patches':>8} {'tissue s':>9} {'graphs/s':>9} "
        f"{'embed/s':>8} {'RSS GB':>7}"
    )
    for r in rows:
        print(
            f"{r['area']:>4}× {r['shape'][0]:>6}×{r['shape'][1]:<6} {r['scheduler']:>10} {r['patches']:>8} "
            f"{r['tissue_s']:>9.2f} {r['graphs_per_s']:>9.1f} {r['embed_per_s']:>8.1f} {r['peak_rss_gb']:>7.2f}"
        )
    growth = {}
    for scheduler in args.schedulers:
        mine = [r for r in rows if r["scheduler"] == scheduler]
        growth[scheduler] = mine[-1]["peak_rss_gb"] / mine[0]["peak_rss_gb"]
        print(f"{scheduler}: peak RSS {mine[-1]['area']}× / 1× area = {growth[scheduler]:.2f}")
    print(
        json.dumps(
            {
                "benchmark": "whole_slide",
                "baseline": "sync scheduler (one process)",
                "rows": rows,
                "rss_growth_largest_vs_1x": growth,
                "quick": args.quick,
            }
        )
    )


if __name__ == "__main__":
    main()
