"""Batch graph building: which local Dask scheduler builds a slide's patch graphs fastest here.

Baseline in the same run: the ``sync`` scheduler (one task at a time in this process). Compared:
``threads`` and ``processes`` (spawned workers, started once per run, warmed up before timing),
each with ``--workers`` workers, on the tissue patches of the bundled sample slide. Prints a
table, then one JSON line.

    OMP_NUM_THREADS=1 python benchmarks/batch_schedulers.py --quick
    OMP_NUM_THREADS=1 python benchmarks/batch_schedulers.py --workers 2 --repeats 3 [--mpp 0.5]
"""

import argparse
import json
import os
import statistics
import time

from hmgdm_core.batch import SlideGraphConfig, SlideItem, TaskRunner, item_graphs
from hmgdm_core.sample import sample_slide_path


def timed(item: SlideItem, config: SlideGraphConfig, scheduler: str, workers: int, repeats: int) -> tuple[float, int]:
    """Median seconds of ``item_graphs`` over ``repeats`` runs after one warm-up, and the graph count."""
    with TaskRunner(scheduler, workers) as runner:
        count = len(item_graphs(item, config, runner))  # warm-up: imports in the workers
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            item_graphs(item, config, runner)
            times.append(time.perf_counter() - start)
    return statistics.median(times), count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one 600² px region, one repeat: a few seconds")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mpp", type=float, default=1.0, help="µm/px of the patches (0.5: four times as many)")
    args = parser.parse_args()
    config = SlideGraphConfig(mpp=args.mpp)
    box, repeats = ((1280, 768, 600, 600), 1) if args.quick else (None, args.repeats)
    item = SlideItem(sample_slide_path(), box)
    base, count = timed(item, config, "sync", 1, repeats)
    rows = {"sync": base}
    for scheduler in ("threads", "processes"):
        rows[scheduler], _ = timed(item, config, scheduler, args.workers, repeats)
    print(f"{'scheduler':>10} {'workers':>7} {'graphs':>7} {'median s':>9} {'ms/graph':>9} {'vs sync':>8}")
    for scheduler, seconds in rows.items():
        workers = 1 if scheduler == "sync" else args.workers
        print(f"{scheduler:>10} {workers:>7} {count:>7} {seconds:>9.2f} {1000 * seconds / count:>9.1f} "
              f"{base / seconds:>7.2f}x")
    print(json.dumps({"benchmark": "batch_schedulers", "graphs": count, "workers": args.workers, "mpp": args.mpp,
                      "cpu_count": os.cpu_count(), "median_s": rows,
                      "speedup_vs_sync": {k: base / v for k, v in rows.items()}, "quick": args.quick}))


if __name__ == "__main__":
    main()
