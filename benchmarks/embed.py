"""Embedding cost: encoder-only inference (μ of node and edge latents + patch vectors) per 500-node graph.

Ours: ``embed_dataset`` with batches, which folds the linear maps before the encoder's first propagation and
never collates the features (``hmgdm_core.model.inference``). Baselines in the same run: ``HMGDM.encode`` on the
collated batch (the unfolded pass, same batches), and ``embed_dataset`` one graph per pass (what a per-tile
loop does). Prints a table, then one JSON line.

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
from torch_geometric.data import Batch
from torch_geometric.utils import scatter

sys.path.insert(0, str(Path(__file__).parent))
from bench_graphs import benchmark_graph
from hmgdm_core.embed import embed_dataset
from hmgdm_core.masking import no_mask
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


@torch.inference_mode()
def unfolded(model: HMGDM, graphs: list, batch_size: int, device: str) -> None:
    """The pass before folding: each batch's features collated, then ``HMGDM.encode`` and the patch pooling."""
    for start in range(0, len(graphs), batch_size):
        batch = Batch.from_data_list(graphs[start : start + batch_size]).to(device)
        encoded = model.encode(batch, no_mask(batch.num_nodes, batch.edge_index.shape[1], batch.x.device))
        for rows, graph in ((encoded.node_mu, batch.batch), (encoded.edge_mu, batch.batch[batch.edge_index[0]])):
            for reduce in ("mean", "max"):
                scatter(rows, graph, 0, batch.num_graphs, reduce=reduce)


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
    previous = timed(lambda: unfolded(model, graphs, args.batch_size, args.device), args.repeats, args.device)
    single = timed(lambda: embed_dataset(model, graphs, 1, args.device), args.repeats, args.device)
    ours, base, one = (1000 * t / count for t in (batched, previous, single))
    print(f"{'N':>5} {'E':>6} {'graphs':>6} {'ours ms/graph':>14} {'unfolded ms/graph':>18} {'ratio':>6} ", end="")
    print(f"{'one-by-one ms/graph':>20} {'ratio':>6}")
    print(f"{nodes:>5} {graphs[0].num_edges:>6} {count:>6} {ours:>14.1f} {base:>18.1f} {base / ours:>5.2f}x ", end="")
    print(f"{one:>20.1f} {one / ours:>5.2f}x")
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
                "baseline": "HMGDM.encode on the collated batch (unfolded)",
                "baseline_ms_per_graph": base,
                "ratio": base / ours,
                "one_by_one_ms_per_graph": one,
                "quick": args.quick,
            }
        )
    )


if __name__ == "__main__":
    main()
