"""Stage 1: the entity VAE that turns pixel entity graphs into latent entity graphs (skipped in ``raw`` mode).

In ``raw`` mode the graph's 3 × 32 × 32 windows are the stage-2 features directly and no VAE is involved;
with a VAE, :func:`latent_graph` maps every graph before pre-training and the decoder turns predictions back
into pixel windows for the reconstruction overlays.
"""

from hmgdm_core.vae.autoencoder import EntityVAE
from hmgdm_core.vae.config import VAEConfig
from hmgdm_core.vae.fit import VAEFinished, VAEStep, fit_entity_vae, latent_graph, load_entity_vae, save_entity_vae
from hmgdm_core.vae.inputs import VAE_FILE, ModelInputs, model_inputs, run_vae

__all__ = [
    "VAE_FILE",
    "EntityVAE",
    "ModelInputs",
    "VAEConfig",
    "VAEFinished",
    "VAEStep",
    "fit_entity_vae",
    "latent_graph",
    "load_entity_vae",
    "model_inputs",
    "run_vae",
    "save_entity_vae",
]
