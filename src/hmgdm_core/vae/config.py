"""Hyper-parameters of the stage-1 entity VAE and of its training."""

from __future__ import annotations

from dataclasses import dataclass

from hmgdm_core.config_checks import check_at_least, check_fields, check_positive

__all__ = ["VAEConfig"]


@dataclass(frozen=True)
class VAEConfig:
    """A compact AutoencoderKL over entity windows; defaults give 3072-d latents from 3 × 32 × 32 windows.

    The paper does not give its stage-1 settings (method-spec §3); these are ours: f = 2 and 12 latent channels
    keep the 3072-d interface of the released stage 2 (12 × 16 × 16), with LDM's L1 + β·KL (β = 1e-6 on
    per-sample sums) and no LPIPS or discriminator.
    """

    window: int = 32
    """Side w of the square RGB windows (features are 3·w² values in [-1, 1], channel-first)."""
    downsample: int = 2
    """Spatial downsampling factor f (a power of two)."""
    latent_channels: int = 12
    """Latent channels z; the latent feature width is z·(w/f)²."""
    base_channels: int = 32
    """Channels of the first convolution; doubled at every downsampling."""
    kl_weight: float = 1e-6
    """β of the KL term (LDM's value, on per-sample sums)."""
    lr: float = 1e-3
    """Adam learning rate."""
    batch_size: int = 256
    """Windows per step."""
    steps: int = 2000
    """Optimisation steps."""
    seed: int = 0
    """Seed of the initialisation and the window sampling."""

    def __post_init__(self) -> None:
        check_fields(self)
        for name in ("window", "downsample", "latent_channels", "base_channels", "batch_size", "steps"):
            check_at_least(self, name, 1)
        check_positive(self, "lr")
        check_at_least(self, "kl_weight", 0)

    @property
    def latent_dim(self) -> int:
        """Width z·(w/f)² of a flattened latent."""
        return self.latent_channels * (self.window // self.downsample) ** 2
