"""What a pre-trained denoiser reads: the encoder's context, the noised targets, or neither.

For each checkpoint and timestep: node-target MSE (in the units the network trains in) of its prediction, of the
same pass with the encoder's output zeroed, and of the baseline "noised target alone" (the best scalar multiple
of x_t, fitted on the rows measured), beside predicting zero. A denoiser that uses x_t beats the baseline at small
t; one that uses its context gets worse with the encoder zeroed. Prints a table, then one JSON line.

    OMP_NUM_THREADS=1 python benchmarks/decoder_reliance.py hmgdm-kather-cmu1 --dataset kather.pt
    OMP_NUM_THREADS=1 python benchmarks/decoder_reliance.py RUN_DIR other.pt --dataset kather.pt --graphs 96

``--dataset`` is a graph dataset file (``hmgdm graph FOLDER --folder --out kather.pt``, or the representation
benchmark's cache); graphs are taken evenly spread over it.
"""

import argparse
import json
from pathlib import Path

import numpy as np

from hmgdm_core.graph.dataset import GraphDataset
from hmgdm_core.model.diagnostics import decoder_reliance
from hmgdm_core.pretrained.registry import resolve_checkpoint
from hmgdm_core.train import load_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", help="bundled model names, checkpoint files or run folders")
    parser.add_argument("--dataset", type=Path, required=True, help="graph dataset file (.pt)")
    parser.add_argument("--graphs", type=int, default=96, help="graphs measured, spread evenly over the dataset")
    parser.add_argument("--timesteps", type=int, nargs="+", default=[10, 100, 300, 500, 700, 900, 999])
    args = parser.parse_args()
    dataset = GraphDataset.load(args.dataset)
    picked = np.linspace(0, len(dataset) - 1, min(args.graphs, len(dataset))).round().astype(int)
    graphs = [dataset[int(i)] for i in picked]
    results = {}
    print(f"{'model':<28} {'t':>4} {'with encoder':>13} {'encoder zeroed':>15} {'x_t alone':>10} {'zero':>7}")
    for name in args.checkpoints:
        checkpoint = load_checkpoint(resolve_checkpoint(name))
        config = checkpoint.config
        rows = decoder_reliance(checkpoint.model, graphs, config.diffusion, config.mask, args.timesteps)
        label = Path(name).name[:28]
        for r in rows:
            print(
                f"{label:<28} {r.t:>4} {r.with_encoder:>13.4f} {r.encoder_zeroed:>15.4f} "
                f"{r.noised_alone:>10.4f} {r.predict_zero:>7.4f}"
            )
        results[name] = {
            "mask": config.mask.mode,
            "rows": [vars(r) for r in rows],
            "ratio_zeroed_vs_with_encoder": float(np.median([r.encoder_zeroed / r.with_encoder for r in rows])),
            "ratio_with_encoder_vs_noised_alone_smallest_t": rows[0].with_encoder / rows[0].noised_alone,
        }
    print(
        json.dumps(
            {
                "benchmark": "decoder_reliance",
                "baseline": "noised target alone (best c * x_t)",
                "graphs": len(graphs),
                "dataset": str(args.dataset),
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()
