"""Pre-training start-up: loading a stored graph dataset, then seconds from ``pretrain()`` to its ``Started`` event.

Loading: the dataset file as written now (format 3: each record field concatenated into one column) against the
same records written as format 2 (the previous format: a list of records with a dozen tensors each), the named
baseline; ``GraphDataset.load`` reads both.

Starting: before the first step a run checks every graph's features, fingerprints the dataset (for resume) and
fits the input standardisation. On a :class:`GraphDataset` these read each record's stored windows: two windows
cut for the fingerprint, 8-bit pixel sums for the statistics. The named baseline is the same dataset behind a plain
sequence view, which every run went through before: every graph decoded and expanded to float32 windows, once for
the fingerprint and once for the statistics. Both must give the same fingerprint (checked).

    OMP_NUM_THREADS=1 python benchmarks/pretrain_start.py ../shared/data/kather2016-crc-texture [--repeats 3]
    OMP_NUM_THREADS=1 python benchmarks/pretrain_start.py ../shared/data/kather2016-crc-texture --quick

The dataset is built once with ``hmgdm graph --folder``'s settings and cached (``--cache``). Prints a table and
one JSON line; medians of ``--repeats`` per variant, alternating.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch_geometric.data import Data

sys.path.insert(0, str(Path(__file__).parent))
from hmgdm_core.graph import GraphConfig, GraphDataset
from hmgdm_core.train import Started, pretrain
from hmgdm_core.train.checkpoint import data_fingerprint
from representation import RECIPE, build_graphs, cache_file, tile_index


class ExpandingView(Sequence):
    """The graphs of a dataset through the generic sequence interface: each access expands one graph."""

    def __init__(self, dataset: GraphDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Data:
        return self.dataset[int(index)]


def seconds_to_start(graphs: Sequence[Data], out_dir: Path) -> float:
    """Wall time from calling :func:`pretrain` to its ``Started`` event (the run is then closed)."""
    start = time.perf_counter()
    run = pretrain(graphs, RECIPE, out_dir)
    for event in run:
        if isinstance(event, Started):
            elapsed = time.perf_counter() - start
            run.close()
            return elapsed
    raise RuntimeError("the run ended before it started")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", type=Path, help="a folder of labelled tiles (Kather 2016's layout)")
    parser.add_argument("--repeats", type=int, default=3, help="starts per variant (median reported)")
    parser.add_argument("--quick", action="store_true", help="8 tiles per class, one start each")
    parser.add_argument("--mpp", type=float, default=0.495, help="µm per pixel of the tiles (Kather 2016: 0.495)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "hmgdm-representation")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = tile_index(args.data_dir, "class_index", "slide", 8 if args.quick else None)
    cache = cache_file(args.cache, args.data_dir, len(rows))
    dataset, _ = build_graphs(rows, cache, args.mpp, GraphConfig().window)
    repeats = 1 if args.quick else args.repeats
    work = Path(tempfile.mkdtemp(prefix="hmgdm-pretrain-start-"))
    files = {"load: format 3 (columns)": work / "columns.pt", "baseline: format 2 (records)": work / "v2.pt"}
    dataset.save(files["load: format 3 (columns)"])
    # Each tensor its own storage, as format 2 wrote them (a loaded format-3 record's tensors share the columns').
    own = [{k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in r.items()} for r in dataset.records]
    torch.save({"format": "hmgdm-entity-graph/2", "graphs": own}, files["baseline: format 2 (records)"])
    starts = {"start: stored form (GraphDataset)": dataset, "baseline: expanding view": ExpandingView(dataset)}
    times: dict[str, list[float]] = {name: [] for name in [*files, *starts]}
    for repeat in range(repeats):
        for name, path in files.items():
            begin = time.perf_counter()
            GraphDataset.load(path)
            times[name].append(time.perf_counter() - begin)
        for number, (name, graphs) in enumerate(starts.items()):
            times[name].append(seconds_to_start(graphs, work / f"{repeat}-{number}"))
    same = data_fingerprint(dataset) == data_fingerprint(ExpandingView(dataset))
    medians = {name: statistics.median(values) for name, values in times.items()}
    load = medians["baseline: format 2 (records)"] / medians["load: format 3 (columns)"]
    start = medians["baseline: expanding view"] / medians["start: stored form (GraphDataset)"]
    sizes = {name: path.stat().st_size / 2**20 for name, path in files.items()}
    print(f"{len(dataset)} graphs from {args.data_dir.name}, the representation benchmark's recipe, one thread")
    print(f"{'variant':<36} {'median s':>9} {'per graph ms':>13}")
    for name, seconds in medians.items():
        print(f"{name:<36} {seconds:>9.2f} {1000 * seconds / len(dataset):>13.2f}")
    print(f"load {load:.2f}x faster ({sizes['load: format 3 (columns)']:.1f} MiB against "
          f"{sizes['baseline: format 2 (records)']:.1f} MiB); start {start:.2f}x faster; same fingerprint: {same}")
    print(
        json.dumps(
            {
                "benchmark": "pretrain_start",
                "graphs": len(dataset),
                "repeats": repeats,
                "median_s": {k: round(v, 3) for k, v in medians.items()},
                "file_mib": {k: round(v, 1) for k, v in sizes.items()},
                "load_speedup": round(load, 2),
                "start_speedup": round(start, 2),
                "same_fingerprint": same,
            }
        )
    )


if __name__ == "__main__":
    main()
