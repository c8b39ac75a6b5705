"""Training of the entity VAE on the node and edge windows of pixel entity graphs, as a generator of events."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch_geometric.data import Data

from hmgdm_core.errors import InputError
from hmgdm_core.io.atomic import atomic_path
from hmgdm_core.vae.autoencoder import EntityVAE
from hmgdm_core.vae.config import VAEConfig

__all__ = ["VAEFinished", "VAEStep", "fit_entity_vae", "latent_graph", "load_entity_vae", "save_entity_vae"]


@dataclass(frozen=True)
class VAEStep:
    """One VAE optimisation step."""

    step: int
    """Steps done (1-based)."""
    loss: float
    """Per-sample Σ|x - x̂| + β·ΣKL."""
    l1: float
    """Mean absolute error per pixel value (in [-1, 1] units)."""
    kl: float
    """Per-sample KL sum."""


@dataclass(frozen=True)
class VAEFinished:
    """Training ended (all steps, or cancelled); the VAE was saved."""

    step: int
    """Steps done."""
    path: Path
    """Saved VAE."""


def _window_source(graphs: Sequence[Data]) -> tuple[torch.Tensor, list[tuple[int, str]]]:
    counts, sources = [], []
    for i, graph in enumerate(graphs):
        for kind in ("x", "edge_attr"):
            counts.append(getattr(graph, kind).shape[0])
            sources.append((i, kind))
    return torch.cumsum(torch.tensor(counts), 0), sources


def fit_entity_vae(
    graphs: Sequence[Data],
    out_path: str | os.PathLike[str],
    config: VAEConfig | None = None,
    device: torch.device | str = "cpu",
    cancelled: Callable[[], bool] | None = None,
) -> Iterator[VAEStep | VAEFinished]:
    """Train an :class:`EntityVAE` on the node and edge windows of pixel graphs (``x``/``edge_attr`` rows).

    Parameters
    ----------
    graphs : sequence of Data
        Pixel entity graphs: rows are channel-first 3 × w × w windows in [-1, 1].
    out_path : str or PathLike
        Where the trained VAE is saved (atomically).
    config : VAEConfig, optional
        Architecture and optimisation (default: ours, 3072-d latents).
    device : torch.device or str
        Where to train.
    cancelled : callable, optional
        Checked before every step (e.g. ``lambda: token.cancelled``); when it returns True the VAE is saved as is.

    Yields
    ------
    VAEStep or VAEFinished
    """
    config = config or VAEConfig()
    torch.manual_seed(config.seed)
    vae = EntityVAE(config).to(device)
    optimizer = torch.optim.Adam(vae.parameters(), lr=config.lr)
    ends, sources = _window_source(graphs)
    total = int(ends[-1]) if len(ends) else 0
    if total == 0:
        raise InputError("the graphs hold no window: build graphs with at least one node first")
    generator = torch.Generator().manual_seed(config.seed)
    side = config.window
    step = 0
    while step < config.steps and not (cancelled is not None and cancelled()):
        picks = torch.randint(0, total, (config.batch_size,), generator=generator)
        owner = torch.searchsorted(ends, picks, right=True)
        starts = torch.cat([torch.zeros(1, dtype=ends.dtype), ends[:-1]])
        rows = [
            getattr(graphs[sources[o][0]], sources[o][1])[r]
            for o, r in zip(owner.tolist(), (picks - starts[owner]).tolist(), strict=True)
        ]
        windows = torch.stack(rows).reshape(-1, 3, side, side).to(device)
        mu, logvar = vae.encode(windows)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=generator).to(device)
        l1 = (vae.decode(z) - windows).abs()
        kl = 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar).flatten(1).sum(1).mean()
        loss = l1.flatten(1).sum(1).mean() + config.kl_weight * kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        yield VAEStep(step, loss.item(), l1.mean().item(), kl.item())
    yield VAEFinished(step, save_entity_vae(out_path, vae))


def save_entity_vae(path: str | os.PathLike[str], vae: EntityVAE) -> Path:
    """Write weights and JSON config atomically (temporary file + rename); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "model": {k: v.detach().cpu() for k, v in vae.state_dict().items()},
        "config": json.dumps(asdict(vae.config)),
    }
    with atomic_path(path) as temporary:
        torch.save(payload, temporary)
    return path


def load_entity_vae(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> EntityVAE:
    """Read a VAE saved by :func:`save_entity_vae` with ``weights_only=True``; returned frozen, in eval mode."""
    try:
        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
        vae = EntityVAE(VAEConfig(**json.loads(payload["config"])))
        vae.load_state_dict(payload["model"])
    except InputError:
        raise
    except Exception as error:  # truncated, not a torch file, keys missing, shapes that do not fit
        message = " ".join(str(error).split())[:300] or type(error).__name__
        raise InputError(f"{path} is not a readable entity VAE ({type(error).__name__}: {message})") from None
    vae.requires_grad_(False)
    return vae.to(device).eval()


@torch.inference_mode()
def latent_graph(vae: EntityVAE, graph: Data) -> Data:
    """The latent entity graph: a copy of ``graph`` whose ``x`` and ``edge_attr`` are the VAE's posterior means.

    Parameters
    ----------
    vae : EntityVAE
        A trained, frozen VAE.
    graph : Data
        Pixel entity graph (rows are 3 × w × w windows).

    Returns
    -------
    Data
        Same topology, ``pos`` and ``edge_pair``; features (N, z·(w/f)²) and (E, z·(w/f)²), float32.
    """
    device = next(vae.parameters()).device
    latent = graph.clone()
    latent.x = vae.encode_features(graph.x.to(device)).float().cpu()
    latent.edge_attr = vae.encode_features(graph.edge_attr.to(device)).float().cpu()
    return latent
