"""``hmgdm pretrained list | info NAME``: the models bundled with the package and their cards."""

from __future__ import annotations

import argparse
import json

__all__ = ["add_pretrained", "format_card"]


def _f1(card: dict) -> str:
    """The card's macro-F1 on the representation benchmark, or why there is none."""
    rows = (card.get("representation") or {}).get("results", {})
    if "bundled" not in rows:
        return "not benchmarked yet"
    mean, std = rows["bundled"]["macro_f1"]
    # Runs before the readout was recorded pooled the latent means μ.
    return f"{mean:.1f} ± {std:.1f} % (readout {card['representation'].get('readout', 'mu')})"


def format_card(card: dict) -> str:
    """A model card as readable text (``hmgdm pretrained info``)."""
    model = card["config"]["model"]
    lines = [
        f"{card['name']}: {card['description']}",
        f"file          {card['file']} ({card['bytes'] / 1e6:.1f} MB, {card['dtype']}, sha256 {card['sha256']})",
        f"network       F {model['feature_dim']}, embed {model['embed_dim']}, hidden {model['hidden_dim']}, "
        f"L {model['num_layers']}",
        f"training      {card['steps']} steps ({card['epochs']} epochs over {card['graphs']} graphs) in "
        f"{card['wall_time_s']:.0f} s{' in all' if 'init' in card else ''} on {card['hardware']['device']}, "
        f"{card['date']}",
        f"command       {card['command']}",
    ]
    if "init" in card:
        # A continued run: its own steps, and the weights (and hardware) it started from.
        start = card["init"]
        lines[-2] += f"; this run {start['steps_this_run']} steps in {start['wall_time_s_this_run']:.0f} s"
        lines.append(
            f"started from  {start['from']} (sha256 {start['sha256'][:12]}…): {start['steps']} steps on "
            f"{start['hardware']}, {start['date']}, by: {start['command']}"
        )
    for source in card["training_data"]:
        lines.append(f"data          {source['name']}: {source['graphs_used']} graphs, {source['licence']}")
        lines.append(f"              attribution: {source['attribution']}")
    lines.append(f"not used      {card['excluded_data']}")
    lines.append(f"fp16 check    relative embedding change {card['fp16_embedding_difference']:.1e}")
    lines.append(f"benchmark     macro-F1 on Kather (linear probe, benchmarks/representation.py): {_f1(card)}")
    for name, row in ((card.get("representation") or {}).get("results") or {}).items():
        mean, std = row["macro_f1"]
        lines.append(f"              {name:<12} macro-F1 {mean:.1f} ± {std:.1f} %")
    return "\n".join(lines)


def _list(args: argparse.Namespace) -> None:
    from hmgdm_core.pretrained import list_pretrained, model_card

    names = list_pretrained()
    if not names:
        print("no bundled model in this installation")
    for name in names:
        card = model_card(name)
        licences = ", ".join(s["licence"] for s in card["training_data"])
        print(
            f"{name}  {card['steps']} steps, {card['bytes'] / 1e6:.1f} MB {card['dtype']}, data licences "
            f"{licences}, Kather macro-F1 {_f1(card)}"
        )


def _info(args: argparse.Namespace) -> None:
    from hmgdm_core.pretrained import model_card, pretrained_path

    card = model_card(args.name)
    pretrained_path(args.name)  # verifies the file against the card's hash
    print(json.dumps(card, indent=2, ensure_ascii=False) if args.json else format_card(card))


def add_pretrained(sub: argparse._SubParsersAction) -> None:
    """Register ``hmgdm pretrained`` with ``list`` and ``info``."""
    pretrained = sub.add_parser("pretrained", help="models bundled with the package (start points, no training)")
    actions = pretrained.add_subparsers(dest="action", required=True, metavar="ACTION", help="list or info")
    listing = actions.add_parser("list", help="the bundled models, one line each")
    listing.set_defaults(func=_list)
    info = actions.add_parser("info", help="the model card of one bundled model (its file's hash is checked)")
    info.add_argument("name", help="a name from `hmgdm pretrained list`")
    info.add_argument("--json", action="store_true", help="print the card as JSON")
    info.set_defaults(func=_info)
