"""Pre-trained H-MGDM checkpoints shipped with the package, each with a JSON model card.

>>> from hmgdm_core.pretrained import list_pretrained, load_pretrained
>>> model = load_pretrained(list_pretrained()[0]).model
"""

from hmgdm_core.pretrained.export import export_pretrained
from hmgdm_core.pretrained.registry import (
    DEFAULT_PRETRAINED,
    list_pretrained,
    load_pretrained,
    model_card,
    pretrained_config,
    pretrained_path,
    resolve_checkpoint,
)

__all__ = [
    "DEFAULT_PRETRAINED",
    "export_pretrained",
    "list_pretrained",
    "load_pretrained",
    "model_card",
    "pretrained_config",
    "pretrained_path",
    "resolve_checkpoint",
]
