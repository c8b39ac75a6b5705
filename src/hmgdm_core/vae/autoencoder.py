"""EntityVAE: a small AutoencoderKL-style convolutional VAE over entity windows (stage 1)."""

from __future__ import annotations

import math

from torch import Tensor, nn

from hmgdm_core.errors import InputError
from hmgdm_core.vae.config import VAEConfig

__all__ = ["EntityVAE", "ResBlock"]


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels), channels)


class ResBlock(nn.Module):
    """GroupNorm → SiLU → Conv3×3, twice, plus a (1×1 when widths differ) skip, as in LDM's autoencoder."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _norm(in_channels),
            nn.SiLU(),
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            _norm(out_channels),
            nn.SiLU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
        )
        self.skip = nn.Identity() if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Map (B, C_in, h, w) to (B, C_out, h, w)."""
        return self.skip(x) + self.body(x)


class EntityVAE(nn.Module):
    """Encoder E_P and decoder D_P of the entity auto-encoder.

    Parameters
    ----------
    config : VAEConfig
        Window size, f, latent channels and widths.
    """

    def __init__(self, config: VAEConfig | None = None) -> None:
        super().__init__()
        config = config or VAEConfig()
        levels = int(math.log2(config.downsample))
        if 2**levels != config.downsample or config.window % config.downsample:
            raise InputError(f"downsample must be a power of two dividing the window, got {config.downsample}")
        self.config = config
        widths = [config.base_channels * 2**i for i in range(levels + 1)]
        encoder: list[nn.Module] = [nn.Conv2d(3, widths[0], 3, padding=1)]
        for i in range(levels):
            encoder += [ResBlock(widths[i], widths[i + 1]), nn.Conv2d(widths[i + 1], widths[i + 1], 3, 2, 1)]
        encoder += [ResBlock(widths[-1], widths[-1]), _norm(widths[-1]), nn.SiLU()]
        encoder.append(nn.Conv2d(widths[-1], 2 * config.latent_channels, 3, padding=1))
        self.encoder = nn.Sequential(*encoder)
        decoder: list[nn.Module] = [nn.Conv2d(config.latent_channels, widths[-1], 3, padding=1)]
        decoder.append(ResBlock(widths[-1], widths[-1]))
        for i in reversed(range(levels)):
            decoder += [
                nn.Upsample(scale_factor=2.0, mode="nearest"),
                nn.Conv2d(widths[i + 1], widths[i + 1], 3, padding=1),
            ]
            decoder.append(ResBlock(widths[i + 1], widths[i]))
        decoder += [_norm(widths[0]), nn.SiLU(), nn.Conv2d(widths[0], 3, 3, padding=1)]
        self.decoder = nn.Sequential(*decoder)

    def encode(self, windows: Tensor) -> tuple[Tensor, Tensor]:
        """Posterior of windows.

        Parameters
        ----------
        windows : Tensor, shape (B, 3, w, w)
            RGB in [-1, 1].

        Returns
        -------
        mu, logvar : Tensor, shape (B, z, w/f, w/f)
        """
        mu, logvar = self.encoder(windows).chunk(2, dim=1)
        return mu, logvar.clamp(-30.0, 20.0)

    def decode(self, latents: Tensor) -> Tensor:
        """Windows (B, 3, w, w) from latents (B, z, w/f, w/f)."""
        return self.decoder(latents)

    def encode_features(self, features: Tensor) -> Tensor:
        """Flattened posterior means (M, z·(w/f)²) of flattened windows (M, 3·w²) (the latent entity graph)."""
        side = self.config.window
        if features.shape[1] != 3 * side * side:
            raise InputError(
                f"features have {features.shape[1]} values; a {side}×{side} RGB window has {3 * side * side}"
            )
        mu, _ = self.encode(features.reshape(-1, 3, side, side))
        return mu.flatten(1)

    def decode_features(self, latents: Tensor) -> Tensor:
        """Pixel windows (M, 3, w, w) in [-1, 1] (clamped) from flattened latents (M, z·(w/f)²)."""
        side = self.config.window // self.config.downsample
        windows = self.decode(latents.reshape(-1, self.config.latent_channels, side, side))
        return windows.clamp(-1.0, 1.0)
