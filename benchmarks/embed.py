"""Embedding cost: encoder-only inference (μ of node and edge latents + patch vectors) per 500-node graph.

Baseline in the same run: one graph per forward pass (what a per-tile loop does); ours: ``embed_dataset``
with batches. Prints a table, then one JSON line.

    OMP_NUM_THREADS=1 python benchmarks/embed.py --quick
    OMP_NUM_THREADS=1 python benchmarks/embed.py --nodes 500 --graphs 16 --batch-size 8 [--device cuda]
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_graphs import benchmark_graph
from hmgdm_core.embed import embed_dataset
from hmgdm_core.model import HMGDM, ModelConfig


def timed(fn, repeats: int, device: str) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small graphs, a few seconds")
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--graphs", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    nodes, count = (100, 4) if args.quick else (args.nodes, args.graphs)
    graphs = [benchmark_graph(nodes, seed=i) for i in range(count)]
    torch.manual_seed(0)
    model = HMGDM(ModelConfig()).to(args.device).eval()
    batched = timed(lambda: embed_dataset(model, graphs, args.batch_size, args.device), args.repeats, args.device)
    single = timed(lambda: embed_dataset(model, graphs, 1, args.device), args.repeats, args.device)
    ours, base = 1000 * batched / count, 1000 * single / count
    print(f"{'N':>5} {'E':>6} {'graphs':>6} {'batched ms/graph':>17} {'one-by-one ms/graph':>20} {'ratio':>6}")
    print(f"{nodes:>5} {graphs[0].num_edges:>6} {count:>6} {ours:>17.1f} {base:>20.1f} {base / ours:>5.2f}x")
    print(
        json.dumps(
            {
                "benchmark": "embed",
                "device": args.device,
                "nodes": nodes,
                "edges": graphs[0].num_edges,
                "graphs": count,
                "batch_size": args.batch_size,
                "ms_per_graph": ours,
                "baseline": "one graph per pass",
                "baseline_ms_per_graph": base,
                "ratio": base / ours,
                "quick": args.quick,
            }
        )
    )


if __name__ == "__main__":
    main()
