"""The bundled pre-trained model as the widgets' default model (no training needed first)."""

from __future__ import annotations

from hmgdm_core.pretrained import DEFAULT_PRETRAINED, list_pretrained, pretrained_path

__all__ = ["BUNDLED_TOOLTIP", "bundled_checkpoint"]

BUNDLED_TOOLTIP = (
    f"default: the bundled pre-trained model {DEFAULT_PRETRAINED} (`hmgdm pretrained info "
    f"{DEFAULT_PRETRAINED}`); choose a checkpoint of your own training to use it instead"
)


def bundled_checkpoint() -> dict[str, str]:
    """``{"value": file}`` of the bundled model (hash-checked) for a checkpoint picker; empty when none is installed."""
    if DEFAULT_PRETRAINED not in list_pretrained():
        return {}
    return {"value": str(pretrained_path(DEFAULT_PRETRAINED))}
