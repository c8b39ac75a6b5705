"""``hmgdm finetune``: the paper's end-to-end fine-tuning protocol on labelled graphs, cross-validated."""

from __future__ import annotations

import argparse

__all__ = ["add_finetune"]


def _finetune(args: argparse.Namespace) -> None:
    from pathlib import Path

    import numpy as np

    from hmgdm_core.cli.evaluate import _write_report
    from hmgdm_core.downstream import FinetuneConfig, finetune_cv, pretrained_classifier
    from hmgdm_core.errors import InputError
    from hmgdm_core.graph.dataset import GraphDataset
    from hmgdm_core.train import latest_checkpoint, load_checkpoint
    from hmgdm_core.vae import model_inputs

    # A run folder means its latest checkpoint; the VAE of a latent run lies beside that file.
    checkpoint = Path(args.checkpoint)
    checkpoint = (latest_checkpoint(checkpoint) or checkpoint) if checkpoint.is_dir() else checkpoint
    state = load_checkpoint(checkpoint)
    dataset = GraphDataset.load(args.dataset)
    labels = dataset.labels
    if len(labels) == 0 or (labels < 0).any():
        raise InputError(f"{args.dataset}: every graph needs a label (build it with `hmgdm graph` and a label column)")
    groups = np.asarray([g if g is not None else f"graph-{i}" for i, g in enumerate(dataset.groups)])
    # Latent checkpoints read their VAE's latents; raw ones the windows (model_inputs refuses a mismatch).
    inputs = model_inputs(state.config.model.feature_dim, checkpoint, args.vae)
    graphs = inputs.graphs([dataset[i] for i in range(len(dataset))])
    config = FinetuneConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        n_splits=args.folds,
        validation_splits=args.validation_folds,
        seed=args.seed,
        device=args.device,
    )
    model = state.model.cpu()
    head = "the paper's head (raw node latents)" if args.paper_head else "standardised node and edge latents"
    ours = not args.paper_head
    # pretrained_classifier copies the model, so every fold starts from the pre-trained weights.
    report = finetune_cv(
        lambda classes: pretrained_classifier(model, classes, standardise=ours, edge_context=ours),
        graphs,
        labels,
        groups,
        config,
        f"fine-tuned gated-attention classifier, {head}",
    )
    print(report.to_markdown())
    _write_report(report.to_json(), args.out)


def add_finetune(sub: argparse._SubParsersAction) -> None:
    """Register ``hmgdm finetune``."""
    finetune = sub.add_parser(
        "finetune",
        help="fine-tune the pre-trained encoder with a gated-attention head (slide-grouped CV, best validation loss)",
    )
    finetune.add_argument("checkpoint", help="checkpoint file or pretraining run folder")
    finetune.add_argument("dataset", help="labelled graph dataset written by `hmgdm graph` (labels and groups)")
    finetune.add_argument("--vae", default=None, help="entity VAE of a latent checkpoint (default: the one beside it)")
    finetune.add_argument("--folds", type=int, default=5, help="test folds, grouped by slide")
    finetune.add_argument(
        "--validation-folds", type=int, default=5, help="1/k of the training slides validates (model selection)"
    )
    finetune.add_argument("--epochs", type=int, default=100, help="epochs per fold (the best validation loss wins)")
    finetune.add_argument("--batch-size", type=int, default=128, help="graphs per optimiser step")
    finetune.add_argument("--lr", type=float, default=3e-4, help="Adam learning rate")
    finetune.add_argument(
        "--paper-head",
        action="store_true",
        help="the paper's head: node latents as they are (default: with their edges' mean latent, standardised on "
        "the training graphs)",
    )
    finetune.add_argument("--seed", type=int, default=0, help="seed of the folds' initialisation and shuffling")
    finetune.add_argument("--device", default="cpu", help="cpu, cuda, cuda:<i> or mps")
    finetune.add_argument("--out", default=None, help="write the JSON report here")
    finetune.set_defaults(func=_finetune)
