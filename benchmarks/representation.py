"""Representation benchmark (issue 5): H-MGDM, its ablations and two baselines, linear-probed on labelled tiles.

Every method is a named configuration of the same code (``METHODS``), pre-trained on the same graphs for the
same wall-clock budget (a ``CancelToken`` cancelled once ``--minutes`` have passed: the last step may overrun
by its own length), embedded with ``embed_dataset`` (the patch vector of the default readout; the other
readouts are probed too) and probed with the same slide-grouped, class-balanced logistic-regression CV, also
fitted to a few tiles per class of each fold (``--labels-per-class``). The baseline of the run is
``handcrafted`` (pooled entity measurements, no network); ``random-init`` is the same network untrained. Prints
a table and one JSON line, and writes the table as Markdown to ``--out`` with the command, budget, date and
machine.

    OMP_NUM_THREADS=1 python benchmarks/representation.py ../shared/data/kather2016-crc-texture --quick
    OMP_NUM_THREADS=1 python benchmarks/representation.py ../shared/data/kather2016-crc-texture --minutes 2.5 \
        --out docs/representation.md

DATA_DIR holds class folders of images and optionally an ``index.csv`` (columns ``path``, a label column and
a group column, e.g. Kather's ``class_index`` and ``slide``); without an index every image is its own group.
"""

import argparse
import csv
import datetime
import json
import shlex
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import f1_score

from hmgdm_core.diffusion import DiffusionConfig
from hmgdm_core.downstream import (
    ClassifyConfig,
    FinetuneConfig,
    classify_embeddings,
    finetune_cv,
    pooled_measurements,
    pretrained_classifier,
)
from hmgdm_core.downstream.classify import make_probe
from hmgdm_core.downstream.splits import grouped_folds
from hmgdm_core.embed import DEFAULT_READOUT, READOUTS, embed_dataset, patch_width
from hmgdm_core.graph import GraphConfig
from hmgdm_core.graph.dataset import GraphDataset, dataset_from_folder
from hmgdm_core.info import environment_report, format_report
from hmgdm_core.masking import MaskConfig
from hmgdm_core.model import HMGDM
from hmgdm_core.model.diagnostics import active_units
from hmgdm_core.model.loss import LossWeights
from hmgdm_core.pretrained import DEFAULT_PRETRAINED, load_pretrained, model_card
from hmgdm_core.train import (
    Cancelled,
    CancelToken,
    Finished,
    PretrainConfig,
    StepDone,
    TrainConfig,
    load_checkpoint,
    pretrain,
)
from hmgdm_core.train.device import cpu_has_native_bf16
from hmgdm_core.vae import VAEConfig
from hmgdm_core.vae.fit import fit_entity_vae, latent_graph, load_entity_vae

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}
# One small network for every method, so that a CPU budget of minutes buys some training (paper: H 256, D 512).
# NETWORK and BASE carry the paper's input pipeline and split; the ablation rows (3)-(7) change one thing each.
PAPER = PretrainConfig.preset("paper")
NETWORK = replace(
    PAPER.model,
    embed_dim=128,
    hidden_dim=64,
    latent_mlp_dim=32,
    time_mlp_dim=256,
    block_mlp_dim=32,
    head_dims=(128, 256),
)
# lr 1e-3 instead of the paper's 1e-4: the budget is a few hundred steps, not 250 epochs. The paper's loss weights.
TRAIN = TrainConfig(
    batch_size=32, lr=1e-3, loss=PAPER.train.loss, max_steps=10**9, device="cpu", checkpoint_every_epochs=10**6
)
BASE = replace(PAPER, model=NETWORK, train=TRAIN)
# The stage-1 VAE at a quarter of the default width (8 base channels): the default one encodes ~200 windows/s on
# one core, 30 minutes for Kather's ~360k windows. Its latents keep the 3072-d interface, so stage 2 is unchanged.
VAE = VAEConfig(base_channels=8)

# The input pipeline of the recipe candidates: per-feature dataset standardisation in place of the input LayerNorm.
STD_NETWORK = replace(NETWORK, standardise_inputs=True, input_layernorm=False)
CONTEXT = MaskConfig(mode="context")
# With the default's one decoder token per edge pair (the paper rows keep one per direction, as released).
CONTEXT_NETWORK = replace(STD_NETWORK, encoder_mask_token=True, pair_tokens=True)
# The default recipe at the narrowed widths, the default lr (1e-4) and loss weights (no KL term): the `hmgdm` row
# and the rows that vary it.
RECIPE = replace(
    BASE,
    model=CONTEXT_NETWORK,
    mask=CONTEXT,
    train=replace(TRAIN, lr=PretrainConfig().train.lr, loss=PretrainConfig().train.loss),
)
FAST = PretrainConfig.preset("fast")
WINDOW_16 = replace(RECIPE, model=replace(CONTEXT_NETWORK, feature_dim=3 * 16 * 16))
# The widths `--network` chooses between: every method keeps its own settings and takes these widths.
WIDTHS = ("embed_dim", "hidden_dim", "latent_mlp_dim", "time_mlp_dim", "block_mlp_dim", "head_dims")
NETWORKS = {"small": NETWORK, "paper": PAPER.model}


METHODS = {
    "handcrafted": ("(1) pooled entity measurements, no network", None),
    "random-init": ("(2) default network and inputs, random init", replace(BASE, model=CONTEXT_NETWORK, mask=CONTEXT)),
    "paper": ("paper settings: strict mask, input LayerNorm", BASE),
    "graphmae": (
        "(3) masked graph AE: [MASK] targets, t = 0",
        replace(BASE, model=replace(NETWORK, target_input="mask_token"), diffusion=DiffusionConfig(fixed_t=0)),
    ),
    "fixed-t": ("(4) H-MGDM, fixed t = 500", replace(BASE, diffusion=DiffusionConfig(fixed_t=500))),
    "no-edge": (
        "(5) H-MGDM w/o edge branch",
        replace(BASE, model=replace(NETWORK, edge_branch=False), mask=MaskConfig(mode="strict", edge_ratio=0.0)),
    ),
    "official-mask": ("(6) H-MGDM, official (leaky) masking", replace(BASE, mask=MaskConfig(mode="official"))),
    "vae-latent": ("(7) H-MGDM on entity-VAE latents (slow on CPU)", BASE),
    "context": (
        "context mask, input LayerNorm",
        replace(BASE, model=replace(NETWORK, encoder_mask_token=True), mask=CONTEXT),
    ),
    "standardise": ("strict mask, standardised inputs", replace(BASE, model=STD_NETWORK)),
    "kl-0.1": (
        "context + standardised, KL weight 0.1",
        replace(BASE, model=CONTEXT_NETWORK, mask=CONTEXT, train=replace(TRAIN, loss=LossWeights(kl=0.1))),
    ),
    "lr-1e-3": (
        "default recipe at the other rows' Adam lr 1e-3",
        replace(BASE, model=CONTEXT_NETWORK, mask=CONTEXT),
    ),
    "graphmae-std": (
        "GraphMAE-style on standardised inputs, context mask",
        replace(
            BASE,
            model=replace(CONTEXT_NETWORK, target_input="mask_token"),
            mask=CONTEXT,
            diffusion=DiffusionConfig(fixed_t=0),
        ),
    ),
    # The default recipe at the default lr (1e-4): in 1.5-min runs it beat lr 1e-3 (64.4 vs 59.8 macro-F1).
    "hmgdm": ("H-MGDM default: context mask + standardised inputs, no KL term, lr 1e-4", RECIPE),
    "kl-1": (
        "default recipe with the released KL weight 1 (the previous default)",
        replace(RECIPE, train=replace(RECIPE.train, loss=PAPER.train.loss)),
    ),
    # The released decode blocks replace the target tokens, so the decoder ignores x_t (decoder_reliance.py).
    "residual-decode": (
        "default recipe with the figure's residual decode blocks",
        replace(RECIPE, model=replace(CONTEXT_NETWORK, residual_decode=True)),
    ),
    # Issue 12's suspect (4): no positional signal. Sinusoids of each entity's (y, x) added to its input embedding.
    "position": (
        "default recipe with a centroid encoding of each entity's (y, x)",
        replace(RECIPE, model=replace(CONTEXT_NETWORK, centroid_encoding=True)),
    ),
    # The tile's mean appearance gives most of the raw MSE away (docs/representation.md): score the pattern only.
    "norm-targets": (
        "default recipe scored against each target window normalised to mean 0, variance 1 (MAE's targets)",
        replace(RECIPE, train=replace(RECIPE.train, loss=replace(RECIPE.train.loss, normalise_targets=True))),
    ),
    # The learning curve rises late at lr 1e-4 (most of its gain in the last half); lr 1e-3 was worse.
    "lr-3e-4": (
        "default recipe at Adam lr 3e-4",
        replace(RECIPE, train=replace(RECIPE.train, lr=3e-4)),
    ),
    "mask-0.75": (
        "default recipe, 75 % of nodes and edge pairs are targets (MAE's ratio; default 60 %)",
        replace(RECIPE, mask=replace(CONTEXT, node_ratio=0.75, edge_ratio=0.75)),
    ),
    "mask-0.4": (
        "default recipe, 40 % of nodes and edge pairs are targets (default 60 %)",
        replace(RECIPE, mask=replace(CONTEXT, node_ratio=0.4, edge_ratio=0.4)),
    ),
    # graphmae-std ran with the released KL weight (1), which collapsed every row that had it: this is the fair one.
    "graphmae-recipe": (
        "GraphMAE-style (mask-token targets, t = 0) on the default recipe (no KL term, lr 1e-4)",
        replace(
            RECIPE,
            model=replace(CONTEXT_NETWORK, target_input="mask_token"),
            diffusion=DiffusionConfig(fixed_t=0),
        ),
    ),
    "directed-tokens": (
        "default recipe with one decoder token per edge direction (the previous default)",
        replace(RECIPE, model=replace(CONTEXT_NETWORK, pair_tokens=False)),
    ),
    # The CPU preset keeps its own widths under --network: judged against `hmgdm` at equal wall clock.
    "fast": (
        "the `fast` CPU preset at its own widths (hidden 64, one joint layer, lr 1e-3)",
        replace(FAST, train=replace(RECIPE.train, lr=FAST.train.lr)),
    ),
    # Issue 13: bf16 autocast makes a paper-size step 1.2-1.3x faster on CPUs with bf16 in hardware; at what quality?
    "bf16": (
        "default recipe under bf16 autocast (CUDA, or a CPU with AVX512-BF16/AMX)",
        replace(RECIPE, train=replace(RECIPE.train, precision="bf16")),
    ),
    # Issue 12's window size: graphs rebuilt with 16-px node and edge windows (WINDOWS), beside their own random init.
    "random-init-16": ("(2) at 16-px windows, random init", WINDOW_16),
    "window-16": ("default recipe on 16-px windows (768 features, the centre of the 32-px ones)", WINDOW_16),
    # Issue 12's entity kind (benchmarks/readout_ceiling.py --kind both): a tissue and a nuclei graph per tile, one
    # network for both kinds, their patch vectors concatenated (tissue first). Beside their own two baselines.
    "handcrafted-both": ("(1) pooled measurements of a tissue and a nuclei graph per tile", None),
    "random-init-both": (
        "(2) default network untrained, on a tissue and a nuclei graph per tile",
        replace(BASE, model=CONTEXT_NETWORK, mask=CONTEXT),
    ),
    "hmgdm-both": ("default recipe pre-trained on both graphs of every tile, their vectors concatenated", RECIPE),
    "bundled": ("frozen bundled model (hmgdm_core.pretrained), trained outside the budget", None),
    "hybrid": ("bundled model's patch vector ‖ pooled entity measurements (a product option; not the target)", None),
    "hybrid-both": (
        "bundled model's patch vector ‖ pooled measurements of a tissue and a nuclei graph per tile (a product option)",
        None,
    ),
}
OWN_WIDTHS = {"fast"}
# Side in pixels of the node and edge windows of the graphs a method uses, where it is not GraphConfig's (32).
WINDOWS = {"random-init-16": 16, "window-16": 16}
# Rows that probe their network untrained.
UNTRAINED = {"random-init", "random-init-16", "random-init-both"}
# Rows that read a tissue and a nuclei graph per tile (run_both).
BOTH_KINDS = {"handcrafted-both", "random-init-both", "hmgdm-both", "hybrid-both"}
# vae-latent fits a stage-1 VAE and encodes every window first (~30 min on one core): ask for it by name.
# bf16 on a CPU that would emulate it is refused (far slower than fp32): there it is left out unless named.
DEFAULT_METHODS = [m for m in METHODS if m != "vae-latent" and (m != "bf16" or cpu_has_native_bf16())]
# Fractions of the budget at which the learning curve probes the encoder (0: its random initialisation).
CURVE = (0.0, 0.25, 0.5, 1.0)
# The patch-predictions widget's regime: a pathologist marks a few patches per class, not 1,700 tiles. Each fold's
# few-label score is the mean over this many draws of its training tiles.
FEW_LABEL_DRAWS = 10


def sized(config: PretrainConfig, network: str | None, device: str) -> PretrainConfig:
    """``config`` at the widths of ``NETWORKS[network]`` (its own with ``None``), training on ``device``."""
    widths = {} if network is None else {k: getattr(NETWORKS[network], k) for k in WIDTHS}
    return replace(config, model=replace(config.model, **widths), train=replace(config.train, device=device))


def tile_index(data_dir: Path, label_column: str, group_column: str, per_class: int | None) -> list[dict]:
    """Rows (absolute path, label, group, class name) of the tiles, ``per_class`` spread over each class."""
    data_dir = data_dir.resolve()
    index = data_dir / "index.csv"
    if index.is_file():
        with index.open(newline="") as fh:
            rows = [
                {
                    "path": str(data_dir / r["path"]),
                    "label": int(r[label_column]),
                    "group": r[group_column],
                    "name": r.get("class_name") or r[label_column],
                }
                for r in csv.DictReader(fh)
            ]
    else:
        folders = sorted(p for p in data_dir.iterdir() if p.is_dir())
        rows = [
            {"path": str(image), "label": label, "group": image.stem, "name": folder.name}
            for label, folder in enumerate(folders)
            for image in sorted(folder.iterdir())
            if image.suffix.lower() in IMAGE_SUFFIXES
        ]
    if per_class is None:
        return rows
    picked = []
    for label in sorted({r["label"] for r in rows}):
        members = [r for r in rows if r["label"] == label]
        picked += [members[i] for i in np.linspace(0, len(members) - 1, per_class).round().astype(int)]
    return picked


def cache_file(cache_dir: Path, data_dir: Path, tiles: int, window: int | None = None, kind: str = "tissue") -> Path:
    """Where the graphs of ``tiles`` tiles of ``data_dir`` are cached: one file per window side and entity kind
    (``GraphConfig``'s window, the default, and tissue unsuffixed)."""
    default = GraphConfig().window
    suffix = ("" if window in (None, default) else f"-w{window}") + ("" if kind == "tissue" else f"-{kind}")
    return cache_dir / f"{data_dir.resolve().name}-{tiles}{suffix}.pt"


def build_graphs(
    rows: list[dict], cache: Path, mpp: float, window: int, kind: str = "tissue"
) -> tuple[GraphDataset, float]:
    """Graphs of ``kind`` entities (tissue superpixels unless told) of the tiles with ``window``-px windows (cached
    in ``cache``) and the seconds it took to build them (0 when cached)."""
    if cache.is_file():
        return GraphDataset.load(cache), 0.0
    listing = cache.with_suffix(".csv")
    listing.parent.mkdir(parents=True, exist_ok=True)
    with listing.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["path", "label", "group"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    start = time.perf_counter()
    # restrict_to_tissue=False: empty and adipose tiles must still get a graph.
    config = GraphConfig(kind=kind, restrict_to_tissue=False, window=window)
    dataset = dataset_from_folder(
        cache.parent, mpp, config, index_csv=str(listing), label_column="label", group_column="group"
    )
    dataset.save(cache)
    return dataset, time.perf_counter() - start


def initial_model(config: PretrainConfig, graphs) -> HMGDM:
    """The network as pre-training starts it: seeded init, and fitted input statistics when it standardises."""
    torch.manual_seed(config.train.seed)
    model = HMGDM(config.model)
    if config.model.standardise_inputs:
        model.fit_standardisation(graphs)
    return model


def train_curve(graphs, config: PretrainConfig, seconds: float, out_dir: Path) -> list[tuple[float, HMGDM, int, dict]]:
    """Pre-train for ``seconds`` in segments ending at the ``CURVE`` fractions (each resumes the last).

    Returns (fraction, model, steps, last loss parts) at every fraction, the first being the initial model.
    """
    points = [(0.0, initial_model(config, graphs), 0, {})]
    resume, parts = None, {}
    for fraction, previous in zip(CURVE[1:], CURVE[:-1], strict=True):
        token, start, last = CancelToken(), time.perf_counter(), None
        for event in pretrain(graphs, config, out_dir, cancel=token, resume=resume):
            if time.perf_counter() - start >= (fraction - previous) * seconds:
                token.cancel()
            if isinstance(event, StepDone):
                parts = {"kl": event.kl, "node": event.node, "edge": event.edge}
            if isinstance(event, (Cancelled, Finished)):
                last = event
        resume = last.checkpoint
        points.append((fraction, load_checkpoint(resume).model, last.step, dict(parts)))
    return points


def latent_dataset(graphs: GraphDataset, seconds: float, out_dir: Path) -> tuple[list, int, float, float]:
    """Fit the entity VAE for ``seconds``, then encode every graph; returns graphs, VAE steps and both times."""
    start = time.perf_counter()
    steps = 0
    events = fit_entity_vae(graphs, out_dir / "vae.pt", VAE, cancelled=lambda: time.perf_counter() - start >= seconds)
    for event in events:
        steps = event.step
    fitted = time.perf_counter()
    vae = load_entity_vae(out_dir / "vae.pt")
    latent = [latent_graph(vae, graph) for graph in graphs]
    return latent, steps, fitted - start, time.perf_counter() - fitted


def run_method(
    name: str,
    dataset,
    budget: float,
    work: Path,
    probe_fn,
    bundled: str = DEFAULT_PRETRAINED,
    network: str = "small",
    device: str = "cpu",
) -> tuple[dict, HMGDM | None]:
    """Probe results of one method (final metrics, learning curve, active units, loss parts, pre-training note)
    and its final network (``None`` for the hand-crafted baseline), its network at the ``network`` widths and
    trained and embedded on ``device``."""
    widths = None if name in OWN_WIDTHS else network
    config = None if METHODS[name][1] is None else sized(METHODS[name][1], widths, device)
    if name == "bundled":
        card = model_card(bundled)
        note = f"{bundled}: {card['steps']} steps, {card['wall_time_s']:.0f} s ({card['date']})"
        model = load_pretrained(bundled).model
        embedding = embed_dataset(model, dataset, device=device, entities=True)
        units = {"active_units": active_units(embedding.node), "latent_dim": model.config.hidden_dim}
        others = other_readouts(model, dataset, probe_fn, device)
        return {**probe_fn(embedding.patch, final=True), **units, **others, "pretraining": note}, model
    if name == "handcrafted":
        return {**probe_fn(pooled_measurements(dataset), final=True), "pretraining": "none"}, None
    if name == "hybrid":
        card = model_card(bundled)
        patch = embed_dataset(load_pretrained(bundled).model, dataset, device=device).patch
        features = np.hstack([patch, pooled_measurements(dataset)])
        return {**probe_fn(features, final=True), "pretraining": f"{bundled}: {card['steps']} steps"}, None
    if name in UNTRAINED:
        model = initial_model(config, dataset)
        embedding = embed_dataset(model, dataset, device=device, entities=True)
        units = {"active_units": active_units(embedding.node), "latent_dim": model.config.hidden_dim}
        others = other_readouts(model, dataset, probe_fn, device)
        return {**probe_fn(embedding.patch, final=True), **units, **others, "pretraining": "none"}, model
    graphs = dataset
    note = ""
    start = time.perf_counter()
    if name == "vae-latent":
        # The VAE takes a third of the budget and stage 2 the rest; encoding the tiles is preprocessing.
        graphs, vae_steps, vae_s, encode_s = latent_dataset(dataset, budget / 3, work / name)
        budget -= vae_s
        note = f"VAE {vae_s:.0f} s/{vae_steps} steps + encode {encode_s:.0f} s + "
    points = train_curve(graphs, config, budget, work / name)
    seconds = time.perf_counter() - start
    curve, result = [], {}
    for fraction, model, steps, _ in points:
        embedding = embed_dataset(model, graphs, device=device, entities=fraction == 1.0)
        result = probe_fn(embedding.patch, final=fraction == 1.0)
        curve.append((fraction, steps, result["macro_f1"][0]))
    return {
        **result,
        "curve": curve,
        "active_units": active_units(embedding.node),
        "latent_dim": config.model.hidden_dim,
        "loss_parts": points[-1][3],
        **other_readouts(points[-1][1], graphs, probe_fn, device),
        "pretraining": f"{note}{seconds:.0f} s/{points[-1][2]} steps",
    }, points[-1][1]


def run_both(
    name: str,
    sets: dict[str, GraphDataset],
    budget: float,
    work: Path,
    probe_fn,
    network: str,
    device: str,
    bundled: str = DEFAULT_PRETRAINED,
) -> dict:
    """Probe results of a ``BOTH_KINDS`` row: patch vectors of each tile's graph of every kind in ``sets``,
    concatenated in its order (``hybrid-both``: the ``bundled`` model's vector of the tissue graph, then the
    pooled measurements of every kind).

    One network serves every kind, as their windows are the same 3 × w × w features: its input statistics are
    fitted to, and it is pre-trained on, the graphs of all kinds together. The vector is 3H per kind and entity
    type (768 numbers at H 64 for two kinds), not the header's one-kind width.
    """
    if name == "handcrafted-both":
        measured = np.hstack([pooled_measurements(graphs) for graphs in sets.values()])
        return {**probe_fn(measured, final=True), "pretraining": "none"}
    if name == "hybrid-both":
        # As the patch-predictions widget does: the bundled model embeds the tissue graph alone, and the pooled
        # measurements of every kind follow its vector.
        patch = embed_dataset(load_pretrained(bundled).model, sets["tissue"], device=device).patch
        features = np.hstack([patch, *(pooled_measurements(graphs) for graphs in sets.values())])
        return {**probe_fn(features, final=True), "pretraining": f"{bundled}: {model_card(bundled)['steps']} steps"}
    config = sized(METHODS[name][1], network, device)
    joint = GraphDataset([record for graphs in sets.values() for record in graphs.records])

    def patches(model: HMGDM) -> np.ndarray:
        return np.hstack([embed_dataset(model, graphs, device=device).patch for graphs in sets.values()])

    if name in UNTRAINED:
        return {**probe_fn(patches(initial_model(config, joint)), final=True), "pretraining": "none"}
    start = time.perf_counter()
    points = train_curve(joint, config, budget, work / name)
    seconds = time.perf_counter() - start
    curve, result = [], {}
    for fraction, model, steps, _ in points:
        result = probe_fn(patches(model), final=fraction == 1.0)
        curve.append((fraction, steps, result["macro_f1"][0]))
    note = f"{seconds:.0f} s/{points[-1][2]} steps on {len(joint)} graphs"
    return {**result, "curve": curve, "loss_parts": points[-1][3], "pretraining": note}


OTHER_READOUTS = tuple(r for r in READOUTS if r != DEFAULT_READOUT)


def other_readouts(model: HMGDM, graphs, probe_fn, device: str) -> dict:
    """Macro-F1 (mean, std over folds) of the same probe on the patch vectors of every other readout than the
    default (``embed_dataset(readout=...)``: the pooled first-layer states, latent means μ, last-layer states)."""
    f1 = {r: probe_fn(embed_dataset(model, graphs, device=device, readout=r).patch)["macro_f1"] for r in OTHER_READOUTS}
    return {"readouts_macro_f1": f1}


FINETUNED = ("random-init", "hmgdm", "bundled")
"""Rows of the fine-tune table: the default recipe, its random initialisation and the bundled model."""


def finetune_method(
    model,
    dataset,
    labels,
    groups,
    keep,
    folds: int,
    epochs: int,
    batch_size: int,
    device: str = "cpu",
    paper_head: bool = False,
) -> dict:
    """Mean ± std over grouped folds (in %) of end-to-end fine-tuning from ``model`` on the kept tiles."""
    graphs = [dataset[i] for i in np.flatnonzero(keep)]
    config = FinetuneConfig(
        epochs=epochs, batch_size=batch_size, n_splits=folds, validation_splits=folds, device=device
    )
    report = finetune_cv(
        lambda classes: pretrained_classifier(model, classes, standardise=not paper_head, edge_context=not paper_head),
        graphs,
        labels[keep],
        groups[keep],
        config,
    )
    metrics = ("accuracy", "macro_f1", "macro_auc")
    return {k: (100 * report.summary[k].mean, 100 * report.summary[k].std) for k in metrics}


def probe(embeddings: np.ndarray, labels: np.ndarray, groups: np.ndarray, keep: np.ndarray, folds: int) -> dict:
    """Mean ± std over grouped folds of accuracy, macro-F1 and macro AUC (in %) on the kept tiles."""
    report = classify_embeddings(embeddings[keep], labels[keep], groups[keep], ClassifyConfig(n_splits=folds))
    metrics = ("accuracy", "macro_f1", "macro_auc")
    return {k: (100 * report.summary[k].mean, 100 * report.summary[k].std) for k in metrics}


def few_label_probe(
    embeddings: np.ndarray, labels: np.ndarray, groups: np.ndarray, folds: int, per_class: list[int]
) -> dict[int, tuple[float, float]]:
    """Macro-F1 (mean, std over the folds of :func:`probe`, in %) of the same probe fitted to ``k`` training tiles
    per class, for each ``k`` in ``per_class``.

    Each fold's score is the mean over ``FEW_LABEL_DRAWS`` draws (seeds 0, 1, ...) of ``k`` tiles per class from
    its training tiles; the test tiles are the fold's. The draws depend on the labels and folds only, so every
    row of a run is fitted to the same tiles.
    """
    config = ClassifyConfig(n_splits=folds)
    splits = grouped_folds(labels, groups, folds, config.seed)
    scores = {}
    for k in per_class:
        per_fold = []
        for train, test in splits:
            smallest = min(int(np.sum(labels[train] == c)) for c in np.unique(labels))
            if smallest < k:
                raise SystemExit(f"--labels-per-class {k}: a fold has only {smallest} training tiles of one class")
            draws = []
            for seed in range(FEW_LABEL_DRAWS):
                rng = np.random.default_rng(seed)
                pick = np.concatenate(
                    [rng.choice(train[labels[train] == c], k, replace=False) for c in np.unique(labels)]
                )
                predicted = make_probe(config).fit(embeddings[pick], labels[pick]).predict(embeddings[test])
                draws.append(f1_score(labels[test], predicted, average="macro", zero_division=0))
            per_fold.append(100 * np.mean(draws))
        scores[k] = (float(np.mean(per_fold)), float(np.std(per_fold)))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--minutes", type=float, default=2.5, help="pre-training wall time of every method")
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=DEFAULT_METHODS)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="8 tiles per class, 2 folds, 5 s per method, 2 labels per class in the few-label table",
    )
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--labels-per-class",
        type=int,
        nargs="*",
        default=[3, 10, 30],
        help="the few-label table: each row's final vector probed with this many training tiles per class",
    )
    parser.add_argument(
        "--finetune-epochs", type=int, default=10, help="epochs of the fine-tune table (rows FINETUNED); 0: none"
    )
    # 16, not the paper's 128: on ~1,340 training graphs per fold, 10 epochs are then ~840 steps instead of ~105
    # (2 epochs of 128, the previous default, left both rows near chance).
    parser.add_argument("--finetune-batch", type=int, default=16, help="graphs per fine-tuning step")
    parser.add_argument(
        "--paper-head-for",
        nargs="*",
        choices=FINETUNED,
        default=["random-init"],
        help="fine-tune these rows with the paper's head (raw node latents) too, the baseline of the default head",
    )
    parser.add_argument("--mpp", type=float, default=0.495, help="µm per pixel of the tiles (Kather 2016: 0.495)")
    parser.add_argument("--label-column", default="class_index")
    parser.add_argument("--group-column", default="slide")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "hmgdm-representation")
    parser.add_argument("--out", type=Path, help="write the Markdown table here (e.g. docs/representation.md)")
    parser.add_argument("--bundled", default=DEFAULT_PRETRAINED, help="bundled model of the `bundled` row")
    parser.add_argument(
        "--network",
        choices=list(NETWORKS),
        default="small",
        help="widths of every method's network: small (CPU budgets) or the paper's (H 256, D 512; for a GPU)",
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i]: where every method trains and embeds")
    args = parser.parse_args()
    torch.set_num_threads(1)
    budget, folds = (5.0, 2) if args.quick else (60 * args.minutes, args.folds)
    if args.quick:
        args.labels_per_class = [2]
    rows = tile_index(args.data_dir, args.label_column, args.group_column, 8 if args.quick else None)
    default_window = GraphConfig().window

    def graphs_at(window: int) -> tuple[GraphDataset, float]:
        return build_graphs(rows, cache_file(args.cache, args.data_dir, len(rows), window), args.mpp, window)

    def expanded(graphs: GraphDataset) -> GraphDataset | list:
        # Expanded once: decoding every batch's tiles on the host would otherwise bound the accelerator's steps.
        return graphs if args.device == "cpu" else list(graphs)

    built, build_s = graphs_at(default_window)
    labels, groups = built.labels, np.asarray(built.groups)
    datasets = {default_window: expanded(built)}
    nuclei = None  # the nuclei graphs of the BOTH_KINDS rows, built when the first of them runs
    names = {r["label"]: r["name"] for r in rows}
    # grouped_folds needs every class in ≥ folds groups; leave out the classes that are not (Kather: EMPTY, 2 slides).
    dropped = sorted(c for c in set(labels.tolist()) if len(set(groups[labels == c])) < folds)
    keep = ~np.isin(labels, dropped)
    work = Path(tempfile.mkdtemp(prefix="hmgdm-representation-"))
    results = {}

    def probe_fn(embeddings: np.ndarray, final: bool = False) -> dict:
        result = probe(embeddings, labels, groups, keep, folds)
        if final and args.labels_per_class:
            few = few_label_probe(embeddings[keep], labels[keep], groups[keep], folds, args.labels_per_class)
            result["few_labels"] = few
        return result

    tuned = {}
    for name in args.methods:
        if name in BOTH_KINDS:
            if nuclei is None:
                cache = cache_file(args.cache, args.data_dir, len(rows), default_window, "nuclei")
                nuclei = build_graphs(rows, cache, args.mpp, default_window, "nuclei")[0]
                if not (np.array_equal(nuclei.labels, labels) and np.array_equal(np.asarray(nuclei.groups), groups)):
                    raise SystemExit("the nuclei graphs do not list the same tiles in the same order")
            sets = {"tissue": built, "nuclei": nuclei}
            results[name] = run_both(name, sets, budget, work, probe_fn, args.network, args.device, args.bundled)
            f1 = results[name]["macro_f1"]
            print(f"{name}: macro-F1 {f1[0]:.1f} ± {f1[1]:.1f} % {results[name]}", flush=True)
            continue
        window = WINDOWS.get(name, default_window)
        if window not in datasets:
            other = graphs_at(window)[0]
            # The probe's labels and folds are the default graphs': every tile must keep its place.
            if not (np.array_equal(other.labels, labels) and np.array_equal(np.asarray(other.groups), groups)):
                raise SystemExit(f"the {window}-px graphs do not list the same tiles in the same order")
            datasets[window] = expanded(other)
        dataset = datasets[window]
        results[name], model = run_method(
            name, dataset, budget, work, probe_fn, args.bundled, args.network, args.device
        )
        f1 = results[name]["macro_f1"]
        print(f"{name}: macro-F1 {f1[0]:.1f} ± {f1[1]:.1f} % {results[name]}", flush=True)
        if name in FINETUNED and args.finetune_epochs > 0:
            paper = {f"{name}, the paper's head (raw node μ)": True} if name in args.paper_head_for else {}
            heads = {name: False} | paper
            for row, paper_head in heads.items():
                tuned[row] = finetune_method(
                    model,
                    dataset,
                    labels,
                    groups,
                    keep,
                    folds,
                    args.finetune_epochs,
                    args.finetune_batch,
                    args.device,
                    paper_head,
                )
                print(f"{row} fine-tuned: {tuned[row]}", flush=True)
    widths = NETWORKS[args.network]
    gpu = args.device != "cpu"
    where = f"{args.device} ({torch.cuda.get_device_name(args.device)})" if gpu else "the CPU, one thread"
    header = (
        f"{len(keep)} tiles from {args.data_dir.name} ({int(keep.sum())} probed; left out: "
        f"{', '.join(str(names[c]) for c in dropped) or 'none'}, fewer groups than folds), graphs built in "
        f"{build_s:.0f} s{' (cached)' if build_s == 0 else ''}. Network for every method ({args.network}): "
        f"hidden {widths.hidden_dim}, embed {widths.embed_dim}, L = {widths.num_layers}; batch {TRAIN.batch_size}, "
        f"Adam lr {TRAIN.lr} unless the row says otherwise; budget {budget / 60:.2f} min of wall time per method on "
        f"{where}. Probe: standardised, class-balanced logistic regression on the patch vector (readout "
        f"`{DEFAULT_READOUT}`, {patch_width(DEFAULT_READOUT, widths.hidden_dim)} numbers), {folds}-fold CV grouped "
        f"by {args.group_column}; "
        "mean ± std over folds."
    )
    lines = [
        "| method | accuracy % | macro-F1 % | macro AUC % | macro-F1 at 0, ¼, ½, 1 of the budget (steps) "
        f"| macro-F1 % of the {' / '.join(f'`{r}`' for r in OTHER_READOUTS)} readouts | active units "
        "| final KL / node / edge | pre-training |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        cells = " | ".join(f"{r[k][0]:.1f} ± {r[k][1]:.1f}" for k in ("accuracy", "macro_f1", "macro_auc"))
        curve = " → ".join(f"{f1:.1f} ({steps})" for _, steps, f1 in r.get("curve", []))
        units = f"{r['active_units']}/{r['latent_dim']}" if "active_units" in r else ""
        parts = " / ".join(f"{v:.3g}" for v in r.get("loss_parts", {}).values())
        others = " / ".join("{:.1f} ± {:.1f}".format(*f1) for f1 in r.get("readouts_macro_f1", {}).values())
        lines.append(
            f"| {name}: {METHODS[name][0]} | {cells} | {curve} | {others} | {units} | {parts} | {r['pretraining']} |"
        )
    few = {name: r["few_labels"] for name, r in results.items() if "few_labels" in r}
    if few:
        lines += [
            "",
            f"Few labels, as in the patch-predictions widget: macro-F1 % of the same probe on each row's final vector, "
            f"fitted to k training tiles per class of each fold ({FEW_LABEL_DRAWS} draws per fold, the same tiles "
            "for every row) and scored on the fold's test tiles; mean ± std over folds:",
            "",
            "| method | " + " | ".join(f"k = {k}" for k in args.labels_per_class) + " |",
            "|---|" + "---|" * len(args.labels_per_class),
        ]
        for name, scores in few.items():
            lines.append(f"| {name} | " + " | ".join("{:.1f} ± {:.1f}".format(*scores[k]) for k in scores) + " |")
    if tuned:
        lines += [
            "",
            f"End-to-end fine-tuning (`hmgdm finetune` protocol: gated attention, {folds} slide-grouped folds, "
            f"selection on validation loss; the head reads standardised node and edge latents unless the row says "
            f"otherwise), "
            f"{args.finetune_epochs} epochs of batch {args.finetune_batch} per fold on {args.device}:",
            "",
            "| method | accuracy % | macro-F1 % | macro AUC % |",
            "|---|---|---|---|",
        ]
        for name, r in tuned.items():
            cells = " | ".join(f"{r[k][0]:.1f} ± {r[k][1]:.1f}" for k in ("accuracy", "macro_f1", "macro_auc"))
            lines.append(f"| {name} | {cells} |")
    table = "\n".join(lines)
    print(header, table, sep="\n\n")
    summary = {
        "benchmark": "representation",
        "baseline": "handcrafted",
        "budget_s": budget,
        "network": args.network,
        "device": args.device,
        "folds": folds,
        "readout": DEFAULT_READOUT,
        "dropped_classes": [str(names[c]) for c in dropped],
        "results": results,
        "finetune": tuned,
        "ratio_accuracy_vs_baseline": {
            n: r["accuracy"][0] / results["handcrafted"]["accuracy"][0] for n, r in results.items()
        }
        if "handcrafted" in results
        else None,
    }
    if args.out is not None:
        command = "OMP_NUM_THREADS=1 python " + " ".join(shlex.quote(a) for a in sys.argv)
        date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            f"# Representation benchmark\n\nMade by `{command}` on {date}.\n\n{header}\n\n{table}\n\n"
            f"Machine (`hmgdm info`):\n\n```\n{format_report(environment_report())}\n```\n\n"
            f"JSON:\n\n```\n{json.dumps(summary)}\n```\n"
        )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
