"""Patch embeddings of many graph datasets with one checkpoint: one ``.npz`` per dataset, resumable."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hmgdm_core.batch.manifest import ItemResult, write_manifest
from hmgdm_core.batch.sources import SlideItem
from hmgdm_core.batch.tasks import StageProgress
from hmgdm_core.embed import DEFAULT_READOUT, Readout, embed_dataset
from hmgdm_core.errors import InputError
from hmgdm_core.graph import GraphDataset
from hmgdm_core.io.atomic import atomic_path

if TYPE_CHECKING:
    from hmgdm_core.model import HMGDM
    from hmgdm_core.vae import ModelInputs

__all__ = ["dataset_files", "embed_datasets", "embedding_arrays", "load_embedder"]


def dataset_files(sources: Sequence[str | Path]) -> list[Path]:
    """Graph dataset files from files and folders (every ``*.pt`` of a folder, sorted by name).

    Raises
    ------
    InputError
        A source is missing, or a folder holds no ``.pt`` file.
    """
    files: list[Path] = []
    for source in map(Path, sources):
        if source.is_dir():
            found = sorted(p for p in source.glob("*.pt") if not p.name.startswith("."))
            if not found:
                raise InputError(f"{source}: the folder holds no graph dataset (*.pt written by `hmgdm graph`)")
            files += found
        elif source.is_file():
            files.append(source)
        else:
            raise InputError(f"{source}: no such graph dataset file or folder")
    return files


def load_embedder(checkpoint: str | Path) -> tuple[HMGDM, ModelInputs | None, Path]:
    """The network of a checkpoint, the entity VAE its run trained on, and the checkpoint file.

    Parameters
    ----------
    checkpoint : str or Path
        Checkpoint file or pre-training run folder (its latest checkpoint).

    Returns
    -------
    model : HMGDM
        The pre-trained network.
    inputs : ModelInputs or None
        When a ``vae.pt`` lies beside the checkpoint (a run on entity-VAE latents), how to map
        pixel graphs to its latents; None for a run on raw windows.
    path : Path
        The checkpoint file.
    """
    from hmgdm_core.train import latest_checkpoint, load_checkpoint
    from hmgdm_core.vae import VAE_FILE, model_inputs

    path = Path(checkpoint)
    if path.is_dir():
        path = latest_checkpoint(path) or path  # load_checkpoint explains an empty folder
    state = load_checkpoint(path)
    # Raw 32-px windows and the default VAE latents both have 3072 numbers: only the VAE file tells them apart.
    latent = (path.parent / VAE_FILE).is_file()
    return state.model, model_inputs(state.config.model.feature_dim, path) if latent else None, path


def embedding_arrays(model: HMGDM, dataset: GraphDataset, batch_size: int = 32, device: str = "auto",
                     progress: StageProgress | None = None, inputs: ModelInputs | None = None,
                     measurements: bool = False, readout: Readout = DEFAULT_READOUT) -> dict[str, np.ndarray]:
    """The arrays written for one dataset.

    Parameters
    ----------
    model : HMGDM
        A pre-trained network.
    dataset : GraphDataset
        Patch graphs.
    batch_size : int
        Graphs per forward pass.
    device : str
        ``auto``, ``cpu``, ``cuda[:i]`` or ``mps``.
    progress : callable, optional
        ``progress('graphs', done, total)`` after each batch.
    inputs : ModelInputs, optional
        The entity VAE of a latent checkpoint (:func:`load_embedder`); the pixel graphs are mapped
        to its latents first.
    measurements : bool
        Append each graph's pooled entity measurements (:func:`~hmgdm_core.downstream.pooled_measurements`)
        to its patch vector: the hybrid features.
    readout : {"projection", "first", "mu", "states"}
        What the patch vectors pool (:data:`~hmgdm_core.embed.READOUTS`).

    Returns
    -------
    dict
        ``embeddings`` (G, W) float32 patch vectors (W = :func:`~hmgdm_core.embed.patch_width`: 6H for the
        default readout), (G, W + 2M + 2K) with ``measurements``, which also
        writes ``measurement_columns`` (the number of appended columns); ``boxes`` (G, 4) int64 level-0 ``(y, x,
        height, width)`` of each patch; ``labels`` (G,) int64 and ``groups`` (G,) str when every
        graph has them (the input of ``hmgdm classify``), and ``label_names`` (G,) str, the class name of
        each label, when every graph has one.
    """
    from hmgdm_core.downstream import pooled_measurements

    graphs = inputs.graphs(dataset) if inputs is not None else dataset
    embedding = embed_dataset(model, graphs, batch_size=batch_size, device=device, readout=readout,
                              progress=(lambda d, t: progress("graphs", d, t)) if progress is not None else None)
    regions = [json.loads(r["meta"])["region"] for r in dataset.records]
    arrays = {
        "embeddings": embedding.patch,
        "boxes": np.array([[r["y"], r["x"], r["height"], r["width"]] for r in regions], dtype=np.int64).reshape(-1, 4),
    }
    if measurements:
        measured = pooled_measurements(dataset)
        arrays["embeddings"] = np.hstack([embedding.patch, measured])
        arrays["measurement_columns"] = np.array(arrays["embeddings"].shape[1] - embedding.patch.shape[1])
    labels, groups = dataset.labels, dataset.groups
    if len(dataset) and (labels >= 0).all():
        arrays["labels"] = labels
    if len(dataset) and all(g is not None for g in groups):
        arrays["groups"] = np.array(groups, dtype=str)
    names = dataset.label_names
    if "labels" in arrays and all(n is not None for n in names):
        arrays["label_names"] = np.array(names, dtype=str)
    return arrays


def _finished(path: Path, checkpoint: str, measurements: bool, readout: str) -> int | None:
    """Rows of a file made with ``checkpoint``, ``measurements`` and ``readout``, else None.

    None when the file is missing, unreadable or not so made; a file without a recorded readout predates the
    choice (it pooled μ) and is redone.
    """
    if not path.is_file():
        return None
    try:
        with np.load(path) as f:
            if str(f["checkpoint"]) != checkpoint or ("measurement_columns" in f.files) != measurements:
                return None
            if str(f["readout"]) != readout:
                return None
            return int(f["embeddings"].shape[0])
    except (OSError, KeyError, ValueError, EOFError):
        return None


def embed_datasets(
    checkpoint: str | Path,
    datasets: Sequence[str | Path],
    out_dir: str | Path,
    *,
    batch_size: int = 32,
    device: str = "auto",
    overwrite: bool = False,
    items: Sequence[SlideItem] | None = None,
    progress: StageProgress | None = None,
    measurements: bool = False,
    readout: Readout = DEFAULT_READOUT,
) -> list[ItemResult]:
    """Embed every dataset with one checkpoint into ``out_dir/<dataset stem>.npz``.

    Each file holds the arrays of :func:`embedding_arrays` plus ``checkpoint`` (the resolved
    checkpoint path) and ``readout``. A re-run skips files made with the same checkpoint and readout; a longer
    pre-training (a new checkpoint) or another readout redoes them. Failures are recorded, not raised.

    Parameters
    ----------
    checkpoint : str or Path
        Checkpoint file or pre-training run folder (its latest checkpoint).
    datasets : sequence of str or Path
        Graph dataset files (``hmgdm graph`` output).
    out_dir : str or Path
        Folder for the ``.npz`` files and ``embeddings.csv`` / ``embeddings.json`` (the manifest).
    batch_size : int
        Graphs per forward pass.
    device : str
        ``auto``, ``cpu``, ``cuda[:i]`` or ``mps``.
    overwrite : bool
        Redo finished files.
    items : sequence of SlideItem, optional
        The slide item of each dataset, recorded in the manifest.
    progress : callable, optional
        ``progress('datasets', done, total)`` after each dataset, ``progress('graphs', done, total)`` within one.
    measurements : bool
        Append the pooled entity measurements to every patch vector (:func:`embedding_arrays`); a file made
        without them is redone, and the other way round.
    readout : {"projection", "first", "mu", "states"}
        What the patch vectors pool (:data:`~hmgdm_core.embed.READOUTS`).

    Returns
    -------
    list of ItemResult
        One per dataset; ``count`` is the number of embedding rows.
    """
    model, inputs, path = load_embedder(checkpoint)
    key = str(path.resolve())
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results: list[ItemResult] = []
    if progress is not None:
        progress("datasets", 0, len(datasets))
    for done, source in enumerate(map(Path, datasets), start=1):
        item = items[done - 1] if items is not None else None
        target = out / f"{source.stem}.npz"
        count = None if overwrite else _finished(target, key, measurements, readout)
        if count is not None:
            results.append(ItemResult(source.stem, source, "skipped", target, count, item=item))
        else:
            try:
                arrays = embedding_arrays(
                    model, GraphDataset.load(source), batch_size, device, progress, inputs, measurements, readout
                )
                with atomic_path(target) as temporary, temporary.open("wb") as fh:
                    np.savez(fh, checkpoint=np.array(key), readout=np.array(readout), **arrays)
                results.append(ItemResult(source.stem, source, "built", target, len(arrays["embeddings"]), item=item))
            except Exception as error:  # one unreadable dataset must not stop the batch
                message = f"{type(error).__name__}: {error}"
                results.append(ItemResult(source.stem, source, "failed", target, 0, message, item))
        write_manifest(results, out, "embeddings")
        if progress is not None:
            progress("datasets", done, len(datasets))
    return results
