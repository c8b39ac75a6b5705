"""Graph datasets: many entity graphs with optional labels and group ids, for pretraining and probes.

:class:`GraphDataset` is a ``torch.utils.data.Dataset`` of :class:`EntityGraph`, so
``torch_geometric.loader.DataLoader(dataset, batch_size=32)`` batches it directly. Graphs are
held in their compact storage form (the source image and window centres, or uint8 windows; one row
per undirected pair; see :mod:`hmgdm_core.graph.storage`) and expanded to float32 on access.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from torch_geometric.data import Data

from hmgdm_core.errors import InputError
from hmgdm_core.graph.build import GraphConfig, graph_from_image
from hmgdm_core.graph.contract import EntityGraph
from hmgdm_core.graph.storage import (
    expand_rows,
    graph_to_record,
    load_records,
    record_rows,
    record_to_graph,
    save_records,
)
from hmgdm_core.io.region import Region

__all__ = ["FeatureMoments", "GraphDataset", "dataset_from_folder", "dataset_from_region", "feature_moments"]


class GraphDataset(Dataset):
    """A list of entity graphs, stored compactly; indexing returns an :class:`EntityGraph`.

    Parameters
    ----------
    records : list of dict
        Graph records (:func:`~hmgdm_core.graph.storage.graph_to_record`).
    """

    def __init__(self, records: list[dict]) -> None:
        self.records = list(records)

    @classmethod
    def from_graphs(cls, graphs: Sequence[EntityGraph]) -> GraphDataset:
        """A dataset of ``graphs`` (each validated and compacted)."""
        return cls([graph_to_record(g) for g in graphs])

    @classmethod
    def load(cls, path: str | Path) -> GraphDataset:
        """Read a dataset written by :meth:`save` (no pickled objects)."""
        return cls(load_records(path))

    def save(self, path: str | Path) -> Path:
        """Write the dataset to one file; returns its path."""
        return save_records(self.records, path)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int | slice | Sequence[int]) -> EntityGraph | GraphDataset:
        if isinstance(index, slice):
            return GraphDataset(self.records[index])
        if isinstance(index, (int, np.integer)):
            return record_to_graph(self.records[int(index)])
        return GraphDataset([self.records[int(i)] for i in index])

    def float_features(self, index: int) -> dict[str, torch.Tensor]:
        """The node and pair feature rows of graph ``index`` that are stored as floats, not expanded.

        Windows stored as uint8, or re-cut from the held image, are 8-bit pixels and finite by construction,
        so they are left out; float rows (e.g. VAE latents) are returned as stored: ``x`` (N', F) and
        ``pair_attr`` (P', F), one row per undirected pair. Checking these is what
        :func:`~hmgdm_core.train.loop.check_finite` needs, without decoding every graph's image.
        """
        record = self.records[int(index)]
        return {key: record[key] for key in ("x", "pair_attr") if record[key].is_floating_point()}

    def counts(self, index: int) -> tuple[int, int]:
        """Nodes and directed edges (two per stored pair) of graph ``index``, without expanding it."""
        record = self.records[int(index)]
        return int(record["pos"].shape[0]), 2 * int(record["pairs"].shape[0])

    def first_rows(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``x[:1]`` and ``edge_attr[:1]`` of graph ``index`` as :meth:`__getitem__` gives them (float32).

        Only these two windows are cut from a held image, not the graph's hundreds: what
        :func:`~hmgdm_core.train.checkpoint.data_fingerprint` reads.
        """
        rows = record_rows(self.records[int(index)], limit=1)
        return expand_rows(rows["x"]), expand_rows(rows["pair_attr"])

    def __iter__(self) -> Iterator[EntityGraph]:
        for record in self.records:
            yield record_to_graph(record)

    @property
    def labels(self) -> np.ndarray:
        """Graph labels ``y``, shape (len,), int64; -1 where a graph has none."""
        return np.array([int(r["y"][0]) if "y" in r else -1 for r in self.records], dtype=np.int64)

    @property
    def groups(self) -> list[str | None]:
        """Group id (e.g. slide) of each graph, None where unset."""
        import json

        return [json.loads(r["meta"]).get("group") for r in self.records]

    @property
    def label_names(self) -> list[str | None]:
        """Class name of each graph's label (from the index's ``class_name`` column), None where unset."""
        import json

        return [json.loads(r["meta"]).get("label_name") for r in self.records]


@dataclass(frozen=True)
class FeatureMoments:
    """Per-feature sums over the node or edge feature rows of many graphs, in float64."""

    count: int
    """Rows summed."""
    total: torch.Tensor
    """(F,) sum of the rows."""
    square: torch.Tensor
    """(F,) sum of the rows' squares."""

    def __add__(self, other: FeatureMoments) -> FeatureMoments:
        return FeatureMoments(self.count + other.count, self.total + other.total, self.square + other.square)


def _moments(rows: torch.Tensor) -> FeatureMoments:
    """Moments of (K, F) rows; uint8 pixels u stand for u · 2/255 − 1 (:func:`unit_range`)."""
    if rows.dtype != torch.uint8:
        # Per-graph sums in float32 (a few hundred rows), accumulated over the dataset in float64.
        return FeatureMoments(rows.shape[0], rows.sum(0).cpu().double(), rows.square().sum(0).cpu().double())
    # Exact integer sums of the pixels, mapped through x = a·u − 1: no float copy of the windows is made.
    pixels = rows.to(torch.int32)
    s1 = pixels.sum(0, dtype=torch.int64).double()
    s2 = (pixels * pixels).sum(0, dtype=torch.int64).double()
    a, k = 2.0 / 255.0, rows.shape[0]
    return FeatureMoments(k, a * s1 - k, a * a * s2 - 2.0 * a * s1 + k)


def feature_moments(graphs: Sequence[Data], feature_dim: int) -> dict[str, FeatureMoments]:
    """Per-feature moments of the node (``"x"``) and edge (``"edge_attr"``) features of ``graphs``.

    A :class:`GraphDataset` is read in its stored form: windows are summed as 8-bit pixels, exactly, without
    expanding them to floats, and each undirected pair is counted once (both directions carry the same row, so
    the mean and variance are those of the directed edges).

    Parameters
    ----------
    graphs : sequence of Data
        Graphs with ``x`` (N, F) and ``edge_attr`` (E, F).
    feature_dim : int
        F (the moments of no rows are zeros of this width).

    Returns
    -------
    dict of FeatureMoments
    """
    zeros = torch.zeros(feature_dim, dtype=torch.float64)
    empty = FeatureMoments(0, zeros, zeros)
    out = {"x": empty, "edge_attr": empty}
    for index in range(len(graphs)):
        if isinstance(graphs, GraphDataset):
            stored = record_rows(graphs.records[index])
            rows = {"x": stored["x"], "edge_attr": stored["pair_attr"]}
        else:
            graph = graphs[index]
            rows = {"x": graph.x, "edge_attr": graph.edge_attr}
        out = {key: out[key] + _moments(rows[key]) for key in out}
    return out


def _labelled(graph: EntityGraph, label: int | None, group: str | None, name: str | None = None) -> EntityGraph:
    if label is not None:
        graph.y = torch.tensor([label], dtype=torch.int64)
    if name:
        graph.label_name = name
    if group is not None:
        graph.group = group
    return graph


def dataset_from_folder(
    folder: str | Path,
    mpp: float,
    config: GraphConfig | None = None,
    *,
    index_csv: str = "index.csv",
    path_column: str = "path",
    label_column: str | None = "class_index",
    group_column: str | None = "slide",
    name_column: str | None = "class_name",
    progress: Callable[[int, int], None] | None = None,
) -> GraphDataset:
    """Build one graph per patch image of a folder listed in a CSV index (e.g. the Kather tiles).

    Parameters
    ----------
    folder : str or Path
        Folder holding the images and the index.
    mpp : float
        µm per pixel of the patches (Kather 2016: 0.495).
    config : GraphConfig, optional
        What to build (default: ``GraphConfig()``).
    index_csv : str
        CSV file in ``folder``, one row per image.
    path_column : str
        Column with the image path relative to ``folder``.
    label_column, group_column : str or None
        Columns with an integer class label and a group id (slide); None to omit.
    name_column : str or None
        Column with the class name of the label (kept with each graph, shown in reports) if the index has it.
    progress : callable, optional
        Called as ``progress(done, total)`` after each image.

    Returns
    -------
    GraphDataset
        In index order; ``pos`` is in each patch's own pixels (the patch is its own level 0).
    """
    import imageio.v3 as iio

    from hmgdm_core.io.formats import check_png_depth

    config = config or GraphConfig()
    folder = Path(folder)
    index = folder / index_csv
    if not index.is_file():
        raise InputError(f"No index {index}; give a CSV with a '{path_column}' column listing the images.")
    with index.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    records = []
    for done, row in enumerate(rows, start=1):
        check_png_depth(folder / row[path_column])  # the decoder would keep the high byte of 16-bit tiles
        image = iio.imread(folder / row[path_column])
        if image.ndim == 3 and image.shape[2] == 4:
            image = image[..., :3]
        graph = graph_from_image(image, mpp, config)
        label = int(row[label_column]) if label_column else None
        group = row[group_column] if group_column else None
        name = row.get(name_column) if label_column and name_column else None
        records.append(graph_to_record(_labelled(graph, label, group, name), image))
        if progress is not None:
            progress(done, len(rows))
    return GraphDataset(records)


def dataset_from_region(
    image: np.ndarray,
    region: Region,
    patch_size: int,
    config: GraphConfig | None = None,
    *,
    group: str | None = None,
) -> GraphDataset:
    """Cut a region's image into non-overlapping square patches and build one graph per patch.

    Parameters
    ----------
    image : ndarray, shape region.shape + (3,), uint8
        The region's image (e.g. ``slide.read(region)``).
    region : Region
        Where the image lies; each patch gets its own sub-region, so ``pos`` stays in level-0
        (y, x) pixels of the slide.
    patch_size : int
        Patch side in read pixels; partial patches at the right and bottom edges are dropped.
    config : GraphConfig, optional
        What to build (default: ``GraphConfig()``).
    group : str, optional
        Group id given to every graph (e.g. the slide name).

    Returns
    -------
    GraphDataset
        Patches in row-major order.
    """
    config = config or GraphConfig()
    rows, cols = region.shape
    if image.shape[:2] != (rows, cols):
        raise InputError(f"The image {image.shape[:2]} is not the size of its region {(rows, cols)}.")
    if patch_size < 1 or patch_size > min(rows, cols):
        raise InputError(f"patch_size must be between 1 and {min(rows, cols)} pixels, got {patch_size}.")
    d = region.downsample
    records = []
    for y in range(0, rows - patch_size + 1, patch_size):
        for x in range(0, cols - patch_size + 1, patch_size):
            side = max(1, round(patch_size * d))
            # The sub-region's own mpp makes its read shape exactly the patch, even for a fractional downsample.
            sub = Region(
                region.y + round(y * d),
                region.x + round(x * d),
                side,
                side,
                region.base_mpp,
                region.base_mpp * side / patch_size,
            )
            patch = np.ascontiguousarray(image[y : y + patch_size, x : x + patch_size])
            graph = graph_from_image(patch, float(region.mpp), config, sub)
            records.append(graph_to_record(_labelled(graph, None, group), patch))
    return GraphDataset(records)
