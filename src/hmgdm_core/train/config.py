"""Configuration of a pre-training run: one dataclass per stage, bundled, with a JSON round trip."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from hmgdm_core.config_checks import check_at_least, check_fields, check_positive, check_range
from hmgdm_core.diffusion import DiffusionConfig
from hmgdm_core.errors import InputError
from hmgdm_core.masking import MaskConfig
from hmgdm_core.model.config import ModelConfig
from hmgdm_core.model.loss import LossWeights

__all__ = ["PRESETS", "PretrainConfig", "TrainConfig"]

Precision = Literal["fp32", "bf16", "fp16"]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; defaults are the released pre-training recipe (method-spec §7) except the KL weight.

    The default ``loss`` drops the KL term (``LossWeights(kl=0.0)``): with the released weight 1 the latents
    collapse to the prior (KL ≈ 1e-4 per entry, no active unit) and pre-training lowers the linear-probe score of
    the embeddings; without it every latent unit stays active (``docs/representation.md``). The ``paper`` preset
    keeps the released weights.
    """

    batch_size: int = 32
    """Graphs per optimisation step (the global batch under DDP)."""
    epochs: int = 250
    """Passes over the dataset (the released ``max_iters`` counts epochs)."""
    max_steps: int | None = None
    """Stop after this many steps instead of ``epochs`` (for short runs and tests)."""
    micro_batch_size: int | None = None
    """Graphs per forward/backward pass; gradients of a step's micro-batches are accumulated, with the same loss
    and gradient as one pass (peak memory follows the micro-batch). ``None``: as many graphs as ``memory_gb`` allows."""
    memory_gb: float | None = None
    """Memory one forward/backward pass may use, in GiB; a step's graphs are split into passes whose estimated
    peak fits it (:mod:`hmgdm_core.train.memory`). ``None``: 80 % of the free GPU memory, or on a CPU half the
    available RAM, at most 2 GiB. A graph that alone exceeds it is an :class:`InputError`."""
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
    loss: LossWeights = field(default_factory=lambda: LossWeights(kl=0.0))
    """Weights of the KL, node and edge terms (default: the released node and edge weights, no KL term)."""
    seed: int = 2024
    """Seed of the initialisation, the data order and every step's random stream."""
    device: str = "auto"
    """``auto``, ``cpu``, ``cuda``, ``cuda:<i>`` or ``mps``."""
    precision: Precision = "fp32"
    """``fp32``, or ``bf16``/``fp16`` autocast on CUDA; ``bf16`` also on a CPU that has it in hardware (AVX512-BF16 or
    AMX; :func:`~hmgdm_core.train.device.cpu_has_native_bf16`), where it is refused otherwise because emulated bf16
    is far slower than fp32. Weights, gradients and the optimiser stay fp32."""
    checkpoint_every_epochs: int = 25
    """Epochs between checkpoints; the last step and a cancel always write one."""
    keep_last: int | None = 3
    """Checkpoints kept besides the best one (lowest epoch loss) and the one resumed from; ``None`` keeps all."""
    max_bad_steps: int = 5
    """Consecutive non-finite losses or gradients tolerated (each is skipped) before the run fails."""

    def __post_init__(self) -> None:
        check_fields(self)
        for name in (
            "batch_size",
            "epochs",
            "max_steps",
            "micro_batch_size",
            "plateau_every_epochs",
            "checkpoint_every_epochs",
            "keep_last",
        ):
            check_at_least(self, name, 1)
        for name in ("warmup_steps", "plateau_patience", "max_bad_steps", "weight_decay", "min_lr"):
            check_at_least(self, name, 0)
        for name in ("lr", "grad_clip", "memory_gb"):
            check_positive(self, name)
        check_range(self, "plateau_factor", 0.0, 1.0)
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise InputError(f"TrainConfig.betas must be in [0, 1), got {self.betas!r}")


@dataclass(frozen=True)
class PretrainConfig:
    """Everything that defines a pre-training run; written as JSON beside every checkpoint.

    The defaults are our recipe (``context`` masking, standardised inputs without the input LayerNorm, no KL
    term, chosen from the representation benchmark, ``docs/representation.md``); :meth:`preset` gives the named
    ones, ``paper`` among them (the released settings, for the ablations).
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    """Network widths and switches."""
    mask: MaskConfig = field(default_factory=MaskConfig)
    """Condition/target split."""
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    """Noise schedule and objective."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Optimisation."""

    def __post_init__(self) -> None:
        check_fields(self)
        if self.train.loss.normalise_targets and self.diffusion.objective != "x0":
            raise InputError(
                f"normalise_targets normalises the x0 windows the heads regress; with the "
                f"{self.diffusion.objective!r} objective they regress something else: use objective 'x0'"
            )

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
        """Rebuild from :meth:`to_json` output; invalid JSON, unknown keys and bad values are an :class:`InputError`."""
        try:
            data = json.loads(text)
        except ValueError as error:
            raise InputError(f"the config is not valid JSON ({error})") from None
        data = _section("PretrainConfig", data)
        train = _section("TrainConfig", data.get("train", {}))
        loss = _section("LossWeights", train.get("loss", {}))
        return cls(
            model=_build(ModelConfig, data.get("model", {})),
            mask=_build(MaskConfig, data.get("mask", {})),
            diffusion=_build(DiffusionConfig, data.get("diffusion", {})),
            # Loss weights left out take the default recipe's (no KL term), as TrainConfig() does.
            train=_build(TrainConfig, {**train, "loss": _build(LossWeights, {**_DEFAULT_LOSS, **loss})}),
        )


_DEFAULT_LOSS = asdict(TrainConfig().loss)

PRESETS: dict[str, PretrainConfig] = {
    "default": PretrainConfig(),
    # A CPU preset: a quarter of the paper's widths (hidden 64, embedding 128), one joint transformer layer and a
    # 10× learning rate, since a CPU budget buys hundreds of steps, not 250 epochs. Same F, masking and diffusion.
    "fast": PretrainConfig(
        model=ModelConfig(
            embed_dim=128,
            hidden_dim=64,
            latent_mlp_dim=32,
            time_mlp_dim=256,
            joint_depth=1,
            block_mlp_dim=32,
            head_dims=(128, 256),
        ),
        train=TrainConfig(lr=1e-3),
    ),
    # The released network, split and loss: input LayerNorm, no dataset statistics, one decoder token per edge
    # direction, strict (leak-free) subgraph masking, KL weight 1.
    "paper": PretrainConfig(
        model=ModelConfig(input_layernorm=True, standardise_inputs=False, encoder_mask_token=False, pair_tokens=False),
        mask=MaskConfig(mode="strict"),
        train=TrainConfig(loss=LossWeights()),
    ),
}
"""Named starting configurations (``hmgdm pretrain --preset NAME``); options given beside one override it."""


def _section(name: str, values: Any) -> dict[str, Any]:
    if not isinstance(values, dict):
        raise InputError(f"{name} must be a JSON object of fields, got {type(values).__name__}")
    return values


def _build(kind: type, values: Any) -> Any:
    values = _section(kind.__name__, values)
    known = {f.name for f in fields(kind)}
    unknown = set(values) - known
    if unknown:
        raise InputError(f"unknown {kind.__name__} field(s) {sorted(unknown)}; known: {sorted(known)}")
    return kind(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
