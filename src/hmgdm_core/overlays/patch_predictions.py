"""Patch-level predictions over a region: k-means clusters, a few-click linear probe, class maps and export.

Embeddings are one row per patch of a :class:`~hmgdm_core.overlays.PatchGrid`, in the grid's row-major order
(e.g. ``embed_dataset(model, dataset).patch`` for graphs built from ``grid.cut(image)``).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from torch_geometric.data import Data

from hmgdm_core.downstream import ClassifyConfig, make_probe
from hmgdm_core.errors import InputError
from hmgdm_core.io import write_ome_tiff
from hmgdm_core.io.atomic import atomic_path
from hmgdm_core.overlays.patch_grid import PatchGrid

__all__ = ["EntityPoints", "PatchProbe", "class_map", "cluster_patches", "entity_points", "fit_patch_probe",
           "save_predictions"]


def cluster_patches(embeddings: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """K-means clusters of standardised patch embeddings.

    Parameters
    ----------
    embeddings : ndarray, shape (P, D), float
        One embedding per patch.
    k : int
        Number of clusters, 1 ≤ k ≤ P.
    seed : int
        Seed of the k-means initialisation.

    Returns
    -------
    ndarray, shape (P,), int64
        Cluster of each patch in 0..k-1.
    """
    embeddings = np.asarray(embeddings, dtype=np.float64)
    if embeddings.ndim != 2 or not 1 <= k <= len(embeddings):
        raise InputError(f"need (P, D) embeddings and 1 ≤ k ≤ P, got shape {embeddings.shape} and k = {k}.")
    # Standardising first keeps a few large-scale dimensions from deciding the clusters alone.
    scaled = StandardScaler().fit_transform(embeddings)
    return KMeans(n_clusters=k, random_state=seed, n_init=10).fit_predict(scaled).astype(np.int64)


@dataclass(frozen=True)
class PatchProbe:
    """A probe fitted on a few marked patches."""

    pipeline: Pipeline
    """The fitted scikit-learn pipeline (:func:`~hmgdm_core.downstream.make_probe`)."""
    num_classes: int
    """C, the number of classes, marked or not."""

    def predict_proba(self, embeddings: np.ndarray) -> np.ndarray:
        """Class probabilities of patches.

        Parameters
        ----------
        embeddings : ndarray, shape (P, D), float

        Returns
        -------
        ndarray, shape (P, C), float64
            Rows sum to 1; columns of classes without a marked patch are 0.
        """
        proba = np.zeros((len(embeddings), self.num_classes))
        proba[:, self.pipeline.classes_] = self.pipeline.predict_proba(np.asarray(embeddings, dtype=np.float64))
        return proba


def fit_patch_probe(
    embeddings: np.ndarray,
    marked_indices: Sequence[int] | np.ndarray,
    marked_classes: Sequence[int] | np.ndarray,
    num_classes: int,
    config: ClassifyConfig | None = None,
) -> PatchProbe:
    """Fit a probe on the patches the user marked.

    Parameters
    ----------
    embeddings : ndarray, shape (P, D), float
        Embeddings of all patches.
    marked_indices : sequence of int, length M
        Patch indices that were marked.
    marked_classes : sequence of int, length M
        Class of each marked patch, in 0..num_classes-1.
    num_classes : int
        C, the number of classes offered (classes without marks get probability 0).
    config : ClassifyConfig, optional
        Probe settings (default: the linear probe).

    Returns
    -------
    PatchProbe
    """
    config = config or ClassifyConfig()
    embeddings = np.asarray(embeddings, dtype=np.float64)
    indices = np.asarray(marked_indices, dtype=np.int64).reshape(-1)
    classes = np.asarray(marked_classes, dtype=np.int64).reshape(-1)
    if len(indices) != len(classes):
        raise InputError(f"{len(indices)} marked patches but {len(classes)} classes.")
    if len(indices) and (indices.min() < 0 or indices.max() >= len(embeddings)):
        raise InputError(f"marked patch indices must lie in 0..{len(embeddings) - 1}.")
    if len(classes) and (classes.min() < 0 or classes.max() >= num_classes):
        raise InputError(f"marked classes must lie in 0..{num_classes - 1}.")
    if len(np.unique(classes)) < 2:
        raise InputError("mark patches of at least two classes before training the classifier.")
    if config.probe == "knn" and len(indices) < config.n_neighbors:
        raise InputError(f"the kNN probe needs at least {config.n_neighbors} marked patches; mark more or use linear.")
    return PatchProbe(make_probe(config).fit(embeddings[indices], classes), num_classes)


def class_map(
    grid: PatchGrid, probabilities: np.ndarray, heatmap_class: int | None = None, downsample: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Rasters of the predicted class and of one class's probability over the region.

    Parameters
    ----------
    grid : PatchGrid
        The patches the probabilities belong to.
    probabilities : ndarray, shape (P, C), float
        Class probabilities per patch, row-major grid order.
    heatmap_class : int, optional
        Class whose probability the heatmap shows; default: each patch's predicted class (its confidence).
    downsample : int
        Read pixels per raster pixel (see :meth:`PatchGrid.label_raster`).

    Returns
    -------
    classes : ndarray, shape (rows, cols), int64
        Predicted class per pixel of the region's read pixels (or of the downsampled raster), -1 off the grid.
    probability : ndarray, shape (rows, cols), float32
        The heatmap, NaN off the grid.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or len(probabilities) != len(grid):
        raise InputError(f"need ({len(grid)}, C) probabilities for the grid's patches, got {probabilities.shape}.")
    if heatmap_class is not None and not 0 <= heatmap_class < probabilities.shape[1]:
        raise InputError(f"heatmap_class must lie in 0..{probabilities.shape[1] - 1}, got {heatmap_class}.")
    predicted = probabilities.argmax(axis=1)
    heat = probabilities.max(axis=1) if heatmap_class is None else probabilities[:, heatmap_class]
    labels = grid.label_raster(downsample)
    inside = labels >= 0
    classes = np.full(labels.shape, -1, dtype=np.int64)
    probability = np.full(labels.shape, np.nan, dtype=np.float32)
    classes[inside] = predicted[labels[inside]]
    probability[inside] = heat[labels[inside]]
    return classes, probability


def save_predictions(
    tiff_path: str | Path,
    csv_path: str | Path,
    grid: PatchGrid,
    probabilities: np.ndarray,
    class_names: Sequence[str],
    heatmap_class: int | None = None,
    downsample: int = 1,
) -> tuple[Path, Path]:
    """Write the probability heatmap as a pyramidal OME-TIFF and the patch table as CSV (both atomically).

    Parameters
    ----------
    tiff_path : str or Path
        OME-TIFF of the heatmap (:func:`class_map`), float32, 0 off the grid, one pixel per ``downsample``
        read pixels, so its µm per pixel is ``grid.region.mpp · downsample``; its top-left pixel is the
        region's, at level-0 ``(grid.region.y, grid.region.x)``.
    csv_path : str or Path
        One row per patch: ``patch``, level-0 ``x``, ``y``, ``width``, ``height``, ``class`` (index),
        ``class_name`` and one ``p_<name>`` column per class.
    grid : PatchGrid
    probabilities : ndarray, shape (P, C), float
    class_names : sequence of str, length C
    heatmap_class : int, optional
        As in :func:`class_map`.
    downsample : int
        As in :func:`class_map`.

    Returns
    -------
    tuple of Path
        The TIFF and the CSV.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if len(class_names) != probabilities.shape[-1]:
        raise InputError(f"{len(class_names)} class names for {probabilities.shape[-1]} probability columns.")
    _, heat = class_map(grid, probabilities, heatmap_class, downsample)
    tiff = write_ome_tiff(tiff_path, np.nan_to_num(heat, nan=0.0), float(grid.region.mpp) * downsample)
    predicted = probabilities.argmax(axis=1)
    csv_path = Path(csv_path)
    with atomic_path(csv_path) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        header = ["patch", "x", "y", "width", "height", "class", "class_name"]
        writer.writerow(header + [f"p_{name}" for name in class_names])
        for i, ((y0, x0, y1, x1), row) in enumerate(zip(grid.level0_boxes, probabilities, strict=True)):
            c = int(predicted[i])
            writer.writerow([i, x0, y0, x1 - x0, y1 - y0, c, class_names[c]] + [f"{p:.6g}" for p in row])
    return tiff, csv_path


@dataclass(frozen=True)
class EntityPoints:
    """The nodes of many patch graphs as one point set, with a value per node (for a napari Points layer)."""

    pos: np.ndarray
    """(N, 2) float32: node points, level-0 ``(y, x)`` pixels of the slide."""
    patch: np.ndarray
    """(N,) int64: index of each node's patch graph."""
    value: np.ndarray
    """(N,) float32: the node's value (e.g. its attention weight)."""


def entity_points(graphs: Sequence[Data], values: Sequence[np.ndarray], relative: bool = False) -> EntityPoints:
    """Gather per-node values of patch graphs into one point set.

    For the attention heatmap of a fine-tuned classifier: ``values = predict_graphs(model, graphs).attention``.

    Parameters
    ----------
    graphs : sequence of Data
        Patch graphs with ``pos`` (N_g, 2) in level-0 (y, x) pixels.
    values : sequence of ndarray
        One (N_g,) array per graph.
    relative : bool
        Multiply each graph's values by its node count N_g: attention weights, which sum to 1 per graph,
        become comparable across patches of different sizes (1 = uniform attention).

    Returns
    -------
    EntityPoints
    """
    if len(graphs) != len(values):
        raise InputError(f"{len(values)} value arrays for {len(graphs)} graphs.")
    pos, patch, value = [np.zeros((0, 2), np.float32)], [np.zeros(0, np.int64)], [np.zeros(0, np.float32)]
    for index, (graph, v) in enumerate(zip(graphs, values, strict=True)):
        v = np.asarray(v, dtype=np.float32).reshape(-1)
        if len(v) != graph.num_nodes:
            raise InputError(f"graph {index} has {graph.num_nodes} nodes but {len(v)} values.")
        pos.append(graph.pos.cpu().numpy().astype(np.float32))
        patch.append(np.full(len(v), index, dtype=np.int64))
        value.append(v * len(v) if relative else v)
    return EntityPoints(np.concatenate(pos), np.concatenate(patch), np.concatenate(value))
