"""Cancel latency: seconds from ``CancelToken.cancel()`` to the ``Cancelled`` event of a pre-training run.

The cancel lands at a random moment inside a step (after the first step, so the run is warm). Two times: until
the run stops computing (it starts writing its checkpoint) and until ``Cancelled`` (checkpoint written).
Baseline in the same run: the token checked only between steps (the released loop), emulated by switching off
the cancel points inside the passes. Prints a table, then one JSON line.

    OMP_NUM_THREADS=1 python benchmarks/cancel_latency.py --quick
    OMP_NUM_THREADS=1 python benchmarks/cancel_latency.py --nodes 500 --batch 8 --trials 3
"""

import argparse
import contextlib
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_graphs import benchmark_graph
from hmgdm_core.model import ModelConfig
from hmgdm_core.train import Cancelled, CancelToken, PretrainConfig, StepDone, TrainConfig, pretrain
from hmgdm_core.train import loop as loop_module
from hmgdm_core.train import step as step_module


def trial(graphs: list, config: PretrainConfig, rng: random.Random) -> tuple[float, float, float]:
    """(stop s, latency s, step s) of one run cancelled at a random moment of its second step."""
    token = CancelToken()
    first_step = threading.Event()
    seen: dict[str, float] = {}
    save = loop_module.save_checkpoint

    def timed_save(*args, **kwargs):
        seen.setdefault("stopped", time.perf_counter())
        return save(*args, **kwargs)

    loop_module.save_checkpoint = timed_save

    def run(out: str) -> None:
        for event in pretrain(graphs, config, out, cancel=token):
            if isinstance(event, StepDone) and event.step == 1:
                seen["step"] = len(graphs[: config.train.batch_size]) / event.graphs_per_second
                first_step.set()
            if isinstance(event, Cancelled):
                seen["cancelled"] = time.perf_counter()
                return

    with tempfile.TemporaryDirectory() as out:
        worker = threading.Thread(target=run, args=(out,))
        worker.start()
        first_step.wait()
        time.sleep(rng.uniform(0.2, 0.8) * seen["step"])
        asked = time.perf_counter()
        token.cancel()
        worker.join()
    loop_module.save_checkpoint = save
    return seen["stopped"] - asked, seen["cancelled"] - asked, seen["step"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small graphs and widths, a few seconds")
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    model = ModelConfig(hidden_dim=64, embed_dim=128, time_mlp_dim=128) if args.quick else ModelConfig()
    nodes = 100 if args.quick else args.nodes
    graphs = [benchmark_graph(nodes, model.feature_dim, seed=i) for i in range(args.batch)]
    config = PretrainConfig(model=model, train=TrainConfig(batch_size=args.batch, max_steps=50, device="cpu"))
    rng = random.Random(0)
    results = {}
    for variant in ("ours", "between-steps"):
        original = step_module.cancel_points
        if variant == "between-steps":
            step_module.cancel_points = lambda module, cancel: contextlib.nullcontext()
        try:
            runs = [trial(graphs, config, rng) for _ in range(args.trials)]
        finally:
            step_module.cancel_points = original
        results[variant] = {
            "median_stop_s": statistics.median(r[0] for r in runs),
            "max_stop_s": max(r[0] for r in runs),
            "median_latency_s": statistics.median(r[1] for r in runs),
            "max_latency_s": max(r[1] for r in runs),
            "median_step_s": statistics.median(r[2] for r in runs),
        }
    print(f"{'variant':>14} {'stop s (max)':>14} {'to Cancelled s (max)':>22} {'step s':>7}")
    for variant, r in results.items():
        stop = f"{r['median_stop_s']:.2f} ({r['max_stop_s']:.2f})"
        done = f"{r['median_latency_s']:.2f} ({r['max_latency_s']:.2f})"
        print(f"{variant:>14} {stop:>14} {done:>22} {r['median_step_s']:>7.1f}")
    ratio = results["between-steps"]["median_latency_s"] / results["ours"]["median_latency_s"]
    print(
        json.dumps(
            {
                "benchmark": "cancel_latency",
                "nodes": nodes,
                "batch": args.batch,
                "trials": args.trials,
                "baseline": "token checked only between steps",
                "results": results,
                "ratio": ratio,
                "quick": args.quick,
            }
        )
    )


if __name__ == "__main__":
    main()
