r"""Probe pre-training checkpoints (or bundled models) the way the bundled-model checks judge them.

For each checkpoint: the macro-F1 of ``benchmarks/representation.py``'s linear probe (the patch vector of
``--readout``, the default's unless named; 5 slide-grouped folds of the Kather tiles it builds and caches) and
the two-class separation of the bundled-model test on its fixed 240-tile subset (``tests/test_pretrained.py``: 30
tiles per class, spread over ``index.csv``; leave-one-out nearest-centroid accuracy of each pair of classes,
averaged over the 28 pairs), beside the same network with random weights and the checkpoint's
input statistics (3 seeds). Used to follow a long training run, e.g. the continuation of the bundled model
(``docs/representation.md``):

    OMP_NUM_THREADS=1 python scripts/probe_checkpoints.py ../shared/data/kather2016-crc-texture \
        hmgdm-kather-cmu1 RUN/checkpoint-00000390.pt RUN/checkpoint-00000780.pt --cache /work/logs/rep-cache

Prints a table, then one JSON line.
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from hmgdm_core.embed import DEFAULT_READOUT, READOUTS, embed_dataset
from hmgdm_core.graph import GraphConfig
from hmgdm_core.graph.dataset import GraphDataset
from hmgdm_core.model import HMGDM
from hmgdm_core.pretrained import list_pretrained, load_pretrained, model_card
from hmgdm_core.train import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
# The benchmark's probe and the bundled-model test's helpers, so that the numbers mean the same as theirs.
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "tests"))
from representation import build_graphs, cache_file, probe, tile_index  # noqa: E402
from test_pretrained import PER_CLASS, kather_subset_graphs, pairwise_separation, untrained_like  # noqa: E402

KATHER_MPP = 0.495
FOLDS = 5


def test_subset(kather: Path, cache: Path) -> GraphDataset:
    """The bundled-model test's tiles (its ``kather_subset`` fixture), built once and cached."""
    path = cache / f"{kather.resolve().name}-test-subset-{PER_CLASS}.pt"
    if not path.is_file():
        kather_subset_graphs(kather, Path(tempfile.mkdtemp(prefix="hmgdm-subset-"))).save(path)
    return GraphDataset.load(path)


def main() -> None:
    """Probe each checkpoint and random weights of the first one's network; print a table and a JSON line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kather", type=Path, help="the Kather 2016 folder (class folders and index.csv)")
    parser.add_argument(
        "checkpoints", nargs="+", help="bundled names or checkpoint files (steps: a checkpoint's own run's)"
    )
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "hmgdm-representation")
    parser.add_argument("--readout", choices=READOUTS, default=DEFAULT_READOUT, help="what the patch vector pools")
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.cache.mkdir(parents=True, exist_ok=True)
    rows = tile_index(args.kather, "class_index", "slide", None)
    cache = cache_file(args.cache, args.kather, len(rows))
    full, _ = build_graphs(rows, cache, KATHER_MPP, GraphConfig().window)
    labels, groups = full.labels, np.asarray(full.groups)
    # As the benchmark: classes in fewer slides than folds are left out (Kather: EMPTY).
    keep = ~np.isin(labels, [c for c in set(labels.tolist()) if len(set(groups[labels == c])) < FOLDS])
    subset = test_subset(args.kather, args.cache)

    def measure(model: HMGDM) -> dict:
        model.eval()
        patch = embed_dataset(model, full, device="cpu", readout=args.readout).patch
        f1 = probe(patch, labels, groups, keep, FOLDS)["macro_f1"]
        tiles = embed_dataset(model, subset, device="cpu", readout=args.readout).patch
        return {"macro_f1": f1, "pairwise_separation": pairwise_separation(tiles, subset.labels)}

    results = {}
    for name in args.checkpoints:
        if name in list_pretrained():
            model, steps = load_pretrained(name).model, model_card(name)["steps"]
        else:
            checkpoint = load_checkpoint(name)
            model, steps = checkpoint.model, checkpoint.meta["step"]
        if not results:
            for seed in range(3):
                results[f"random init, seed {seed}"] = {"steps": 0, **measure(untrained_like(model, seed))}
        results[name] = {"steps": steps, **measure(model)}
        print(f"{name}: {results[name]}", file=sys.stderr, flush=True)
    print(f"{'model':<60} {'steps':>6} {'probe macro-F1 %':>17} {'two-class sep.':>17}")
    for name, row in results.items():
        f1 = f"{row['macro_f1'][0]:.1f} ± {row['macro_f1'][1]:.1f}"
        print(f"{name[-60:]:<60} {row['steps']:>6} {f1:>17} {row['pairwise_separation']:>17.3f}")
    print(json.dumps({"benchmark": "probe_checkpoints", "folds": FOLDS, "readout": args.readout, "results": results}))


if __name__ == "__main__":
    main()
