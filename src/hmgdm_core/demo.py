"""``hmgdm demo``: the whole pipeline on the bundled sample slide, offline, on the CPU.

Slide → tissue mask → nuclei and tissue graphs of the densest tissue region → a short
H-MGDM pre-training run on that region's patch graphs (a demonstration of training) → embeddings
with the bundled pre-trained model (:mod:`hmgdm_core.pretrained`), which a minute of CPU training
cannot match. Everything lands in one output folder; the report goes line by line to ``echo``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hmgdm_core.io import Region, Slide, open_slide
from hmgdm_core.sample import SAMPLE_ATTRIBUTION, sample_slide_path
from hmgdm_core.tissue import TissueMask, compute_tissue_mask

__all__ = ["densest_tissue_region", "run_demo"]

# A demonstration network: a minute on one CPU core for 60 steps, not the paper's 250 epochs.
DEMO_MODEL = {"embed_dim": 128, "hidden_dim": 64, "latent_mlp_dim": 32, "time_mlp_dim": 128, "block_mlp_dim": 64}


def _outline(mask: np.ndarray) -> np.ndarray:
    """Pixels on the boundary of ``mask`` (True inside, False on a 4-neighbour outside)."""
    padded = np.pad(mask, 1, mode="edge")
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner


def densest_tissue_region(slide: Slide, tissue: TissueMask, size_um: float, mpp: float) -> Region:
    """The square region of side ``size_um`` holding the most tissue (first of equals, row-major).

    Parameters
    ----------
    slide : Slide
        The slide (level-0 size and resolution).
    tissue : TissueMask
        Its tissue mask.
    size_um : float
        Side of the square in µm (clipped to the slide).
    mpp : float
        Resolution the region is to be read at.

    Returns
    -------
    Region
    """
    side = min(round(size_um / slide.mpp), *slide.shape)
    stride = max(1, side // 4)
    best, best_fraction = None, -1.0
    for y in range(0, slide.shape[0] - side + 1, stride):
        for x in range(0, slide.shape[1] - side + 1, stride):
            region = slide.region(y, x, side, side, mpp=mpp)
            fraction = tissue.fraction(region)
            if fraction > best_fraction:
                best, best_fraction = region, fraction
    return best


def _pretrain_demo(
    slide: Slide, region: Region, steps: int, out: Path, echo: Callable[[str], None]
) -> tuple[Path, float, float]:
    from hmgdm_core.graph import GraphConfig, dataset_from_region
    from hmgdm_core.model.config import ModelConfig
    from hmgdm_core.train import Finished, PretrainConfig, StepDone, TrainConfig, pretrain

    patches = dataset_from_region(slide.read(region), region, 128, GraphConfig(kind="tissue"), group="CMU-1")
    # Patches over glass have no entities; they teach nothing.
    dataset = patches[[i for i, g in enumerate(patches) if g.num_nodes > 1]]
    nodes = [g.num_nodes for g in dataset]
    echo(f"pretrain     {len(dataset)} tissue-graph patches of 128² px at {region.mpp} µm/px "
         f"({min(nodes)}-{max(nodes)} nodes), {steps} steps on the CPU (a demonstration, not the paper's 250 epochs)")
    config = PretrainConfig(
        model=ModelConfig(**DEMO_MODEL),
        train=TrainConfig(batch_size=8, max_steps=steps, lr=1e-3, device="cpu", checkpoint_every_epochs=10),
    )
    losses: list[float] = []
    start = time.perf_counter()
    checkpoint = None
    for event in pretrain(dataset, config, out / "pretrain", overwrite=True):  # a demo re-run starts over
        if isinstance(event, StepDone):
            losses.append(event.loss)
            if event.step % 10 == 0 or event.step == 1:
                echo(f"  step {event.step:>3}  loss {event.loss:.4f} (node {event.node:.4f}, edge {event.edge:.4f}, "
                     f"KL {event.kl:.4f})  lr {event.lr:.0e}")
        elif isinstance(event, Finished):
            checkpoint = event.checkpoint
    window = max(1, min(10, len(losses) // 3))
    first, last = np.mean(losses[:window]), np.mean(losses[-window:])
    echo(f"  loss, mean of the first {window} steps {first:.4f} -> last {window} steps {last:.4f} "
         f"({100 * (1 - last / first):.0f}% lower) in {time.perf_counter() - start:.0f} s; checkpoint {checkpoint}")
    dataset.save(out / "patch_graphs.pt")
    return checkpoint, float(first), float(last)


def run_demo(
    out_dir: str | Path,
    slide_path: str | Path | None = None,
    steps: int = 60,
    echo: Callable[[str], None] = print,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Run the pipeline on a slide and report each stage.

    Parameters
    ----------
    out_dir : str or Path
        Folder for the outputs (created if missing).
    slide_path : str or Path, optional
        The slide; defaults to the bundled CMU-1 sample.
    steps : int
        Pre-training steps of the demonstration run (60: about a minute on one core).
    echo : callable
        Receives each line of the report.
    progress : callable, optional
        Called as ``progress(done, 5)`` after each stage: slide and tissue, nuclei graph,
        tissue graph, pre-training, embeddings.

    Returns
    -------
    dict
        ``slide``, ``format``, ``levels`` (shape and downsample per level), ``mpp`` (level 0,
        µm/px), ``tissue_fraction`` (0–1), ``thumbnail`` (PNG with the tissue outline in
        green), ``graphs`` (kind → nodes, undirected edges, file), ``checkpoint``,
        ``loss_first`` / ``loss_last`` (mean loss of the first and last steps),
        ``embedding_model`` (the bundled model's name) and ``embeddings`` (``.npz`` of patch vectors).
    """
    import imageio.v3 as iio
    from skimage.transform import resize

    from hmgdm_core.embed import embed_dataset
    from hmgdm_core.graph import GraphConfig, GraphDataset, build_graph, graph_summary, save_graph
    from hmgdm_core.pretrained import DEFAULT_PRETRAINED, load_pretrained, model_card

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stages = iter(range(1, 6))

    def stage_done() -> None:
        if progress is not None:
            progress(next(stages), 5)

    path = Path(slide_path) if slide_path is not None else sample_slide_path()
    if slide_path is None:
        echo(SAMPLE_ATTRIBUTION)
    summary: dict = {"slide": str(path)}
    with open_slide(path) as slide:
        echo(f"slide        {path.name} ({slide.format})")
        echo(f"µm/px        {slide.mpp:.4f} at level 0")
        levels = []
        for index, (level, mpp) in enumerate(zip(slide.levels, slide.level_mpps, strict=True)):
            levels.append({"shape": list(level.shape), "downsample": [round(d, 4) for d in level.downsample]})
            echo(f"level {index}      {level.shape[0]} x {level.shape[1]} px (rows x cols), "
                 f"downsample {level.downsample[0]:.2f}, {mpp:.3f} µm/px")
        tissue = compute_tissue_mask(slide)
        rows, cols = tissue.mask.shape
        echo(f"tissue       {tissue.fraction_total:.1%} of the slide (mask {rows} x {cols})")
        thumb = slide.thumbnail(1024)
        outline = resize(_outline(tissue.mask).astype(np.float32), thumb.shape[:2], order=0) > 0
        thumb[outline] = (0, 200, 0)
        iio.imwrite(out / "thumbnail.png", thumb)
        echo(f"thumbnail    {out / 'thumbnail.png'} ({thumb.shape[0]} x {thumb.shape[1]}, tissue outline in green)")
        summary |= {"format": slide.format, "levels": levels, "mpp": slide.mpp,
                    "tissue_fraction": tissue.fraction_total, "thumbnail": str(out / "thumbnail.png")}
        stage_done()

        graphs = {}
        for kind, mpp in (("nuclei", 0.5), ("tissue", 1.0)):
            region = densest_tissue_region(slide, tissue, 512.0, mpp)
            start = time.perf_counter()
            graph = build_graph(slide, region, GraphConfig(kind=kind))
            seconds = time.perf_counter() - start
            file = save_graph(graph, out / f"{kind}_graph.pt")
            echo(f"{kind:<12} {graph_summary(graph)}; built in {seconds:.2f} s -> {file.name}")
            graphs[kind] = {"nodes": graph.num_nodes, "edges": graph.edge_index.shape[1] // 2, "file": str(file)}
            stage_done()
        summary["graphs"] = graphs

        region = densest_tissue_region(slide, tissue, 1024.0, 1.0)
        checkpoint, first_loss, last_loss = _pretrain_demo(slide, region, steps, out, echo)
        stage_done()
    # The embeddings come from the bundled model: the demonstration run above is minutes of CPU, it is hours.
    card = model_card(DEFAULT_PRETRAINED)
    model = load_pretrained(DEFAULT_PRETRAINED).model
    dataset = GraphDataset.load(out / "patch_graphs.pt")
    embedding = embed_dataset(model, dataset, device="cpu")
    np.savez(out / "embeddings.npz", embeddings=embedding.patch)
    echo(f"embed        with the bundled pre-trained model {DEFAULT_PRETRAINED} ({card['steps']} steps on "
         f"{', '.join(s['name'].split(' (')[0] for s in card['training_data'])}; `hmgdm pretrained info "
         f"{DEFAULT_PRETRAINED}`), not the demonstration run")
    echo(f"             {embedding.patch.shape[0]} patch vectors of {embedding.patch.shape[1]} numbers "
         f"-> {out / 'embeddings.npz'}")
    stage_done()
    summary |= {"checkpoint": str(checkpoint), "loss_first": first_loss, "loss_last": last_loss,
                "embedding_model": DEFAULT_PRETRAINED, "embeddings": str(out / "embeddings.npz")}
    return summary
