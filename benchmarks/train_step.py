"""Training-step cost: forward + backward + Adam on 3072-d node and edge features, per graph size and batch.

Compares our network (per-graph attention with ``to_dense_batch`` + key-padding SDPA, one decoder token per
undirected edge pair) with the released design: batch-wide dense attention over all (ΣN)² node pairs and (ΣE)²
edge pairs, one decoder token per edge direction (the "released" baseline, same network otherwise). A third
variant, "directed", is ours with one token per direction (``ModelConfig(pair_tokens=False)``), to show what the
pair tokens alone buy. With ``--compiled``, a fourth, "compiled", is ours under ``torch.compile(dynamic=True)``
(graph sizes vary from batch to batch in training), its first step's compile time reported apart. Where the device
multiplies bf16 in hardware (CUDA, or a CPU with AVX512-BF16 or AMX), "bf16" is ours under bf16 autocast
(``TrainConfig(precision="bf16")``; weights, gradients and Adam stay fp32). Each case runs
in a fresh process so that peak RSS is the case's own. Prints a table, then one JSON line.

    OMP_NUM_THREADS=1 python benchmarks/train_step.py --quick
    OMP_NUM_THREADS=1 python benchmarks/train_step.py --sizes 200 500 1000 --batches 1 8 32 [--device cuda]
    OMP_NUM_THREADS=1 python benchmarks/train_step.py --sizes 500 --batches 1 --compiled
    OMP_NUM_THREADS=1 python benchmarks/train_step.py --sizes 500 1000 --batches 1
"""

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).parent))
from bench_graphs import benchmark_graph
from hmgdm_core.diffusion import NoiseSchedule
from hmgdm_core.model import HMGDM, ModelConfig
from hmgdm_core.model.attention import GraphTransformer
from hmgdm_core.train import PretrainConfig, TrainConfig
from hmgdm_core.train.device import cpu_has_native_bf16
from hmgdm_core.train.distributed import ProcessGroup
from hmgdm_core.train.step import make_optimizer, optimisation_step


def released_attention(
    self: GraphTransformer, x: Tensor, graph: Tensor, num_graphs: int, discard: Tensor | None = None
) -> Tensor:
    """The released joint transformer: every token of the batch attends to every other (bug #8), math path.

    It computes every row's output, also the ``discard`` rows that ours skips.
    """
    h = x.unsqueeze(0)
    c = x.shape[1]
    keep = torch.ones(x.shape[0], x.shape[0], dtype=torch.bool, device=x.device)  # the all-True mask of the bug
    for norm, qkv, out, ff in zip(self.attn_norms, self.qkv, self.out, self.ff, strict=True):
        q, k, v = (
            t.reshape(1, -1, self.num_heads, c // self.num_heads).transpose(1, 2) for t in qkv(norm(h)).chunk(3, -1)
        )
        scores = (q @ k.transpose(-1, -2)) / (c // self.num_heads) ** 0.5
        weights = torch.softmax(scores.masked_fill(~keep, float("-inf")), dim=-1)
        h = h + out((weights @ v).transpose(1, 2).reshape(1, -1, c))
        h = ff(h)
    return self.final_norm(h[0])


def failure(stderr: str) -> str:
    """The exception line of a failed case's stderr (torch may log hints after it), shortened."""
    lines = stderr.strip().splitlines() or ["no output"]
    return next((line for line in reversed(lines) if "Error" in line.split(":")[0]), lines[-1])[:120]


def run_case(nodes: int, batch: int, variant: str, device: str, repeats: int, quick: bool, micro: int | None) -> dict:
    model_config = ModelConfig() if not quick else ModelConfig(hidden_dim=64, embed_dim=128, time_mlp_dim=128)
    model_config = replace(model_config, pair_tokens=variant in ("ours", "compiled", "bf16"))
    precision = "bf16" if variant == "bf16" else "fp32"
    config = PretrainConfig(model=model_config, train=TrainConfig(micro_batch_size=micro, precision=precision))
    if variant == "released":
        GraphTransformer.forward = released_attention
    torch.manual_seed(0)
    model = HMGDM(model_config).to(device)
    network = torch.compile(model, dynamic=True) if variant == "compiled" else model
    schedule = NoiseSchedule().to(device)
    optimizer = make_optimizer(model, config.train, torch.device(device))
    scaler = torch.amp.GradScaler(enabled=False)
    graphs = [benchmark_graph(nodes, model_config.feature_dim, seed=i) for i in range(batch)]
    alone = ProcessGroup(rank=0, world_size=1)

    def step(i: int) -> None:
        seeds = [1000 * i + g for g in range(batch)]
        optimisation_step(
            graphs,
            range(batch),
            seeds,
            i,
            batch,
            network,
            schedule,
            optimizer,
            scaler,
            config,
            alone,
            torch.device(device),
        )

    start = time.perf_counter()
    step(0)  # warm-up (and compilation)
    first_s = time.perf_counter() - start
    times = []
    for i in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        step(i + 1)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak_gpu = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None
    return {
        "nodes": nodes,
        "batch": batch,
        "edges_per_graph": graphs[0].num_edges,
        "variant": variant,
        "micro_batch": micro,
        "median_ms": 1000 * statistics.median(times),
        "first_step_s": first_s,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "peak_gpu_gb": peak_gpu,
    }


def cpu_name() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``), else what :func:`platform.processor` says."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes and widths, a few seconds")
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 500, 1000])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--baseline-budget-gb",
        type=float,
        default=12.0,
        help="skip the released baseline when its attention maps would need more memory than this",
    )
    parser.add_argument(
        "--micro-batch",
        type=int,
        default=None,
        help="graphs per forward/backward pass (gradient accumulation; default: whole batch)",
    )
    parser.add_argument(
        "--compiled", action="store_true", help="also time ours under torch.compile (CPU: minutes to compile)"
    )
    parser.add_argument("--case", nargs=3, metavar=("NODES", "BATCH", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        nodes, batch, variant = int(args.case[0]), int(args.case[1]), args.case[2]
        print(json.dumps(run_case(nodes, batch, variant, args.device, args.repeats, args.quick, args.micro_batch)))
        return
    sizes, batches = ([40, 80], [1, 4]) if args.quick else (args.sizes, args.batches)
    native_bf16 = args.device.startswith("cuda") or (args.device == "cpu" and cpu_has_native_bf16())
    variants = ("ours", "directed", "released", *(("bf16",) if native_bf16 else ()))
    variants += ("compiled",) if args.compiled else ()
    rows = []
    for nodes in sizes:
        for batch in batches:
            for variant in variants:
                edges = batch * nodes * 5
                map_bytes = 4 * 4 * (edges**2 + (batch * nodes) ** 2)  # 4 heads × fp32, nodes and edges
                if variant == "released" and map_bytes * 3 > args.baseline_budget_gb * 2**30:
                    rows.append(
                        {
                            "nodes": nodes,
                            "batch": batch,
                            "variant": variant,
                            "median_ms": None,
                            "skipped": f"attention maps need ≥ {3 * map_bytes / 2**30:.0f} GiB",
                        }
                    )
                    continue
                command = [
                    sys.executable,
                    __file__,
                    "--case",
                    str(nodes),
                    str(batch),
                    variant,
                    "--device",
                    args.device,
                    "--repeats",
                    str(1 if args.quick else args.repeats),
                ]
                command += ["--quick"] if args.quick else []
                command += ["--micro-batch", str(args.micro_batch)] if args.micro_batch else []
                result = subprocess.run(command, capture_output=True, text=True, check=False)
                if result.returncode:
                    rows.append(
                        {
                            "nodes": nodes,
                            "batch": batch,
                            "variant": variant,
                            "median_ms": None,
                            "skipped": failure(result.stderr),
                        }
                    )
                else:
                    rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
                print(rows[-1], file=sys.stderr, flush=True)
    # The step is GEMM-bound: its time scales with the cores torch uses (OMP_NUM_THREADS), so say how many.
    cpu = cpu_name()
    print(f"{cpu}, {torch.get_num_threads()} torch threads, device {args.device}")
    header = f"{'N':>5} {'B':>3} {'E/graph':>8} {'ours ms':>9} {'ms/graph':>9} {'RSS GB':>7}"
    print(f"{header} {'directed ms':>12} {'ratio':>6} {'released ms':>12} {'ratio':>6}")
    summary = []
    for nodes in sizes:
        for batch in batches:
            ours = next(r for r in rows if (r["nodes"], r["batch"], r["variant"]) == (nodes, batch, "ours"))
            base = next(r for r in rows if (r["nodes"], r["batch"], r["variant"]) == (nodes, batch, "released"))
            directed = next(r for r in rows if (r["nodes"], r["batch"], r["variant"]) == (nodes, batch, "directed"))
            both = directed["median_ms"] and ours["median_ms"]
            pair_gain = directed["median_ms"] / ours["median_ms"] if both else None
            directed_ms = f"{directed['median_ms']:.0f}" if directed["median_ms"] else directed.get("skipped", "")[:30]
            ratio = base["median_ms"] / ours["median_ms"] if base["median_ms"] and ours["median_ms"] else None
            released = f"{base['median_ms']:.0f}" if base["median_ms"] else base.get("skipped", "")[:30]
            if ours["median_ms"] is None:
                print(f"{nodes:>5} {batch:>3} failed: {ours.get('skipped')}")
                continue
            print(
                f"{nodes:>5} {batch:>3} {ours['edges_per_graph']:>8} {ours['median_ms']:>9.0f} "
                f"{ours['median_ms'] / batch:>9.0f} {ours['peak_rss_gb']:>7.2f} {directed_ms:>12} "
                f"{'' if pair_gain is None else f'{pair_gain:.2f}x':>6} {released:>12} "
                f"{'' if ratio is None else f'{ratio:.2f}x':>6}"
            )
            bf16 = next((r for r in rows if (r["nodes"], r["batch"], r["variant"]) == (nodes, batch, "bf16")), None)
            if bf16 is not None and bf16["median_ms"]:
                gains = f"{ours['median_ms'] / bf16['median_ms']:.2f}x ours fp32"
                if base["median_ms"]:
                    gains += f", {base['median_ms'] / bf16['median_ms']:.2f}x released"
                print(
                    f"{'':>5} {'':>3} bf16 autocast: {bf16['median_ms']:.0f} ms ({gains}), "
                    f"peak RSS {bf16['peak_rss_gb']:.2f} GB"
                )
            elif bf16 is not None:
                print(f"{'':>5} {'':>3} bf16 autocast failed: {bf16.get('skipped')}")
            compiled = next(
                (r for r in rows if (r["nodes"], r["batch"], r["variant"]) == (nodes, batch, "compiled")), None
            )
            if compiled is not None:
                print(
                    f"{'':>5} {'':>3} compiled: "
                    + (
                        f"{compiled['median_ms']:.0f} ms ({ours['median_ms'] / compiled['median_ms']:.2f}x ours), "
                        f"first step {compiled['first_step_s']:.0f} s"
                        if compiled["median_ms"]
                        else f"failed: {compiled.get('skipped')}"
                    )
                )
            summary.append(
                {
                    "nodes": nodes,
                    "batch": batch,
                    "ours_ms": ours["median_ms"],
                    "ours_peak_rss_gb": ours["peak_rss_gb"],
                    "ours_peak_gpu_gb": ours["peak_gpu_gb"],
                    "directed_ms": directed["median_ms"],
                    "speedup_vs_directed": pair_gain,
                    "released_ms": base["median_ms"],
                    "speedup_vs_released": ratio,
                    **(
                        {}
                        if bf16 is None
                        else {"bf16_ms": bf16["median_ms"], "bf16_peak_rss_gb": bf16.get("peak_rss_gb")}
                    ),
                    **(
                        {}
                        if compiled is None
                        else {
                            "compiled_ms": compiled["median_ms"],
                            "compiled_first_step_s": compiled.get("first_step_s"),
                            "compiled_error": compiled.get("skipped"),
                        }
                    ),
                }
            )
    print(
        json.dumps(
            {
                "benchmark": "train_step",
                "device": args.device,
                "baseline": "released batch-wide dense attention, one decoder token per edge direction",
                "micro_batch": args.micro_batch,
                "native_bf16": native_bf16,
                "cpu": cpu,
                "threads": torch.get_num_threads(),
                "quick": args.quick,
                "results": summary,
            }
        )
    )


if __name__ == "__main__":
    main()
