"""Configuration of a pre-training run: one dataclass per stage, bundled, with a JSON round trip."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from hmgdm_core.diffusion import DiffusionConfig
from hmgdm_core.errors import InputError
from hmgdm_core.masking import MaskConfig
from hmgdm_core.model.config import ModelConfig
from hmgdm_core.model.loss import LossWeights

__all__ = ["PRESETS", "PretrainConfig", "TrainConfig"]

Precision = Literal["fp32", "bf16", "fp16"]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; defaults are the released pre-training recipe (method-spec §7)."""

    batch_size: int = 32
    """Graphs per optimisation step (the global batch under DDP)."""
    epochs: int = 250
    """Passes over the dataset (the released ``max_iters`` counts epochs)."""
    max_steps: int | None = None
    """Stop after this many steps instead of ``epochs`` (for short runs and tests)."""
    micro_batch_size: int | None = None
    """Graphs per forward/backward pass; gradients of a step's micro-batches are accumulated, with the same loss
    and gradient as one pass (peak memory follows the micro-batch). ``None``: the whole batch at once."""
    lr: float = 1e-4
    """Adam learning rate."""
    betas: tuple[float, float] = (0.95, 0.999)
    """Adam betas."""
    weight_decay: float = 0.0
    """Adam weight decay."""
    grad_clip: float = 10.0
    """Global gradient-norm clip."""
    warmup_steps: int = 0
    """Linear learning-rate warm-up length (the paper uses none)."""
    plateau_factor: float = 0.6
    """ReduceLROnPlateau factor."""
    plateau_patience: int = 10
    """ReduceLROnPlateau patience, in plateau checks."""
    plateau_every_epochs: int = 20
    """Epochs between plateau checks on the mean 0.5·L_node + 0.5·L_edge of the last epoch (released: 20)."""
    min_lr: float = 0.0
    """Floor of the plateau schedule (the released code declares 1e-5 but never passes it)."""
    loss: LossWeights = field(default_factory=LossWeights)
    """Weights of the KL, node and edge terms."""
    seed: int = 2024
    """Seed of the initialisation, the data order and every step's random stream."""
    device: str = "auto"
    """``auto``, ``cpu``, ``cuda``, ``cuda:<i>`` or ``mps``."""
    precision: Precision = "fp32"
    """``fp32``, or ``bf16``/``fp16`` autocast (CUDA only: bf16 is emulated and ~300× slower on our CPUs)."""
    checkpoint_every_epochs: int = 25
    """Epochs between checkpoints; the last step and a cancel always write one."""
    max_bad_steps: int = 5
    """Consecutive non-finite losses or gradients tolerated (each is skipped) before the run fails."""


@dataclass(frozen=True)
class PretrainConfig:
    """Everything that defines a pre-training run; written as JSON beside every checkpoint.

    The defaults are our recipe (``context`` masking, standardised inputs without the input LayerNorm, chosen
    from the representation benchmark, ``docs/representation.md``); :meth:`preset` gives the named ones,
    ``paper`` among them (the released settings, for the ablations).
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    """Network widths and switches."""
    mask: MaskConfig = field(default_factory=MaskConfig)
    """Condition/target split."""
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    """Noise schedule and objective."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Optimisation."""

    @classmethod
    def preset(cls, name: str) -> PretrainConfig:
        """The named preset (:data:`PRESETS`): ``default`` (our recipe) or ``paper`` (the released settings)."""
        if name not in PRESETS:
            raise InputError(f"unknown preset {name!r}: use one of {sorted(PRESETS)}")
        return PRESETS[name]

    def to_json(self) -> str:
        """Serialise to a JSON string (tuples become lists)."""
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PretrainConfig:
        """Rebuild from :meth:`to_json` output; unknown keys are an :class:`InputError`."""
        data = json.loads(text)
        return cls(
            model=_build(ModelConfig, data.get("model", {})),
            mask=_build(MaskConfig, data.get("mask", {})),
            diffusion=_build(DiffusionConfig, data.get("diffusion", {})),
            train=_build(
                TrainConfig,
                {**data.get("train", {}), "loss": _build(LossWeights, data.get("train", {}).get("loss", {}))},
            ),
        )


def _build(kind: type, values: dict[str, Any]) -> Any:
    known = {f.name for f in fields(kind)}
    unknown = set(values) - known
    if unknown:
        raise InputError(f"unknown {kind.__name__} field(s) {sorted(unknown)}; known: {sorted(known)}")
    return kind(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


PRESETS: dict[str, PretrainConfig] = {
    "default": PretrainConfig(),
    # The released network and split: input LayerNorm, no dataset statistics, strict (leak-free) subgraph masking.
    "paper": PretrainConfig(
        model=ModelConfig(input_layernorm=True, standardise_inputs=False, encoder_mask_token=False),
        mask=MaskConfig(mode="strict"),
    ),
}
"""Named pre-training recipes (``hmgdm pretrain --preset NAME``)."""
