"""The whole pipeline over many slides in one call: graphs (Dask), one pre-training run, embeddings.

Everything lands in one folder, and a re-run picks up where the last one stopped::

    out/graphs/<item>.pt            patch graph dataset per slide or region, manifest.csv/.json
    out/pretrain/checkpoint-*.pt    one pre-training run over all graphs (resumed from its latest checkpoint)
    out/pretrain/vae.pt             the entity VAE, when pre-training on its latents (fitted once, then reused)
    out/embeddings/<item>.npz       patch embeddings per item, embeddings.csv/.json
    out/pipeline.json               the configuration

Under ``torchrun`` every process runs the pre-training (data-parallel); rank 0 alone builds
the graphs and fits the entity VAE (the others wait at a barrier), writes checkpoints, embeds and
reports progress.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from hmgdm_core.batch.embed import embed_datasets
from hmgdm_core.batch.graphs import SlideGraphConfig, build_graphs
from hmgdm_core.batch.manifest import ItemResult
from hmgdm_core.batch.sources import slide_items
from hmgdm_core.batch.tasks import StageProgress, TaskRunner
from hmgdm_core.errors import InputError
from hmgdm_core.graph import GraphDataset
from hmgdm_core.io.atomic import write_text_atomic
from hmgdm_core.train import PretrainConfig, resolve_device
from hmgdm_core.vae import VAEConfig, run_vae

__all__ = ["PipelineConfig", "PipelineResult", "run_pipeline"]


@dataclass(frozen=True)
class PipelineConfig:
    """Settings of every stage of :func:`run_pipeline`."""

    graphs: SlideGraphConfig = field(default_factory=SlideGraphConfig)
    """Resolution, patch size, tissue threshold and graph parameters."""
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    """Model and training (``pretrain.train.device`` also places the embedding)."""
    embed_batch_size: int = 32
    """Graphs per forward pass when embedding."""
    vae: VAEConfig | None = None
    """Pre-train on the latents of an entity VAE fitted with these settings (stage 1); None: raw windows."""


@dataclass(frozen=True)
class PipelineResult:
    """What :func:`run_pipeline` made."""

    graphs: list[ItemResult]
    """Graph stage outcome per item."""
    checkpoint: Path | None
    """The final checkpoint (None on torchrun ranks other than 0)."""
    embeddings: list[ItemResult]
    """Embedding stage outcome per item that has graphs (empty on ranks other than 0)."""

    @property
    def failed(self) -> list[ItemResult]:
        """Items that failed in any stage."""
        return [r for r in [*self.graphs, *self.embeddings] if r.status == "failed"]


def _training_set(results: Sequence[ItemResult]) -> GraphDataset:
    records = [r for res in results if res.status != "failed" for r in GraphDataset.load(res.output).records]
    if not records:
        raise InputError("no slide gave patch graphs (see graphs/manifest.csv): nothing to pre-train on")
    return GraphDataset(records)


def _resume_point(run: Path, dataset: GraphDataset, config: PretrainConfig) -> Path | None:
    """The latest checkpoint of ``run`` if it continues this training, None for a fresh run."""
    from hmgdm_core.train import data_fingerprint, latest_checkpoint, load_checkpoint

    latest = latest_checkpoint(run)
    if latest is None:
        return None
    state = load_checkpoint(latest)
    if state.config.model != config.model or state.meta["data_fingerprint"] != data_fingerprint(dataset):
        raise InputError(f"{latest} was trained on other graphs or another model (slides added, rebuilt or "
                         "changed since): re-run with --overwrite, or use a new output folder")
    return latest


def _pretrain(dataset: GraphDataset, config: PretrainConfig, run: Path, resume: Path | None,
              progress: StageProgress | None) -> Path | None:
    from hmgdm_core.train import Finished, Started, StepDone, pretrain

    checkpoint = None
    total = 0
    # No resume point: a fresh run (or --overwrite), which replaces any earlier run's checkpoints in the folder.
    for event in pretrain(dataset, config, run, resume=resume, overwrite=resume is None):
        if isinstance(event, Started):
            total = event.total_steps
            if progress is not None:
                progress("pretrain", event.start_step, total)
        elif isinstance(event, StepDone) and progress is not None:
            progress("pretrain", event.step, total)
        elif isinstance(event, Finished):
            checkpoint = event.checkpoint
    return checkpoint


def run_pipeline(
    sources: Sequence[str | Path],
    out_dir: str | Path,
    config: PipelineConfig | None = None,
    *,
    scheduler: str = "threads",
    workers: int | None = None,
    slide_mpp: float | None = None,
    overwrite: bool = False,
    progress: StageProgress | None = None,
) -> PipelineResult:
    """Graphs of every slide, one pre-training run over all of them, then embeddings per slide.

    Parameters
    ----------
    sources : sequence of str or Path
        Slide files, folders of slides and CSVs (:func:`~hmgdm_core.batch.sources.slide_items`).
    out_dir : str or Path
        Output folder (layout in the module docstring).
    config : PipelineConfig, optional
        Settings of every stage (default: the default recipe, 128 px patches at 1 µm/px).
    scheduler : str
        Dask scheduler of the graph stage: ``'threads'``, ``'processes'``, ``'sync'``, ``'cluster'``
        (a local ``dask.distributed`` cluster for this call) or a running scheduler's address
        (``'tcp://host:8786'``); see :class:`~hmgdm_core.batch.tasks.TaskRunner`.
    workers : int, optional
        Threads or processes of a local scheduler or cluster.
    slide_mpp : float, optional
        Level-0 µm/px for slides whose files lack it (a CSV ``mpp`` column wins).
    overwrite : bool
        Rebuild graphs, restart the pre-training and redo embeddings instead of resuming.
    progress : callable, optional
        ``progress(stage, done, total)`` with stages ``'slides'`` and ``'patches'`` (graphs),
        ``'vae'`` (entity VAE steps), ``'pretrain'`` (steps), ``'datasets'`` and ``'graphs'``
        (embeddings); rank 0 only.

    Returns
    -------
    PipelineResult
        Per-item outcomes and the final checkpoint. Failed slides are recorded and left out of
        the later stages; the call raises only when no slide gives graphs.
    """
    config = config or PipelineConfig()
    out = Path(out_dir)
    items = slide_items(sources, mpp=slide_mpp)
    group = None
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from hmgdm_core.train.distributed import join_process_group

        group = join_process_group(resolve_device(config.pretrain.train.device))
    writer = group is None or group.is_writer
    report = progress if writer else None
    if writer:
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / "pipeline.json", json.dumps(
            {"sources": [str(s) for s in sources], "config": asdict(config)}, indent=1, default=str))
        with TaskRunner(scheduler, workers) as runner:
            graphs = build_graphs(items, out / "graphs", config.graphs, runner=runner, overwrite=overwrite,
                                  progress=report)
    if group is not None:
        import torch.distributed as dist

        # Rank 0 built the graphs; the others read its files. Pass the outcomes as well as waiting.
        shared = [graphs if writer else None]
        dist.broadcast_object_list(shared, src=0)
        graphs = shared[0]
    dataset = _training_set(graphs)
    run = out / "pretrain"
    pretraining = config.pretrain
    if config.vae is not None:
        # Rank 0 fits the VAE (or reuses the run's); the others wait, then load it.
        inputs = None
        if writer:
            inputs = run_vae(dataset, run, config.vae, resolve_device(pretraining.train.device), refit=overwrite,
                             progress=(lambda d, t: report("vae", d, t)) if report is not None else None)
        if group is not None:
            dist.barrier()
        if inputs is None:
            inputs = run_vae(dataset, run)
        dataset = inputs.graphs(dataset)
        pretraining = replace(pretraining, model=replace(pretraining.model, feature_dim=inputs.vae.config.latent_dim))
    resume = None if overwrite else _resume_point(run, dataset, pretraining)
    checkpoint = _pretrain(dataset, pretraining, run, resume, report)
    if not writer:
        return PipelineResult(graphs, None, [])
    done = [r for r in graphs if r.status != "failed"]
    embeddings = embed_datasets(checkpoint, [r.output for r in done], out / "embeddings",
                                batch_size=config.embed_batch_size, device=config.pretrain.train.device,
                                overwrite=overwrite, items=[r.item for r in done], progress=report)
    return PipelineResult(graphs, checkpoint, embeddings)
