"""Plain-language labels (with units) and tooltips for the config fields the widgets show.

Keyed by field name: a name that appears in several configs (``lr``, ``seed``, ``window``...) means
the same thing in each. A field missing here is shown by its name.
"""

from __future__ import annotations

__all__ = ["FIELD_TEXT", "label_and_tooltip"]

FIELD_TEXT: dict[str, tuple[str, str]] = {
    # --- graph ----------------------------------------------------------------------------------
    "kind": ("entities", "nuclei: one node per cell nucleus; tissue: one node per small patch of similar tissue."),
    "window": ("node image size (px)", "Side of the square image cut around each entity, in read pixels."),
    "restrict_to_tissue": ("ignore glass", "Drop entities outside the detected tissue."),
    "nuclei_topology": ("connect nuclei by", "knn: each nucleus to its nearest neighbours; delaunay: a triangulation."),
    "k": ("neighbours per nucleus", "How many nearest nuclei each nucleus is joined to."),
    "max_distance_um": ("longest link (µm)", "Nuclei farther apart than this are never joined."),
    "shape_features": ("shape measurements", "Also measure each entity's shape (slower)."),
    # --- nuclei ---------------------------------------------------------------------------------
    "smooth_um": ("smoothing (µm)", "Blur before finding nuclei; more merges speckle, less splits noise."),
    "min_od": ("faintest stain kept", "Haematoxylin optical density below which pixels are not nucleus (OD units)."),
    "threshold_scale": (
        "stain threshold × ",
        "Multiplies the automatic haematoxylin threshold: >1 finds fewer nuclei.",
    ),
    "fixed_od": (
        "fixed stain threshold",
        "Use this haematoxylin optical density instead of the automatic one (empty = automatic).",
    ),
    "marker_spacing_um": (
        "nucleus spacing (µm)",
        "Smallest distance between two nucleus centres when splitting clumps.",
    ),
    "min_radius_um": ("smallest radius (µm)", "Blobs thinner than this are not split into separate nuclei."),
    "split_mpp": ("detail for splitting (µm/px)", "Resolution at which touching nuclei are separated."),
    "min_area_um2": ("smallest nucleus (µm²)", "Smaller blobs are ignored."),
    "max_area_um2": ("largest nucleus (µm²)", "Larger blobs are ignored (clumps, folds)."),
    # --- tissue superpixels ---------------------------------------------------------------------
    "superpixel_um": ("tissue piece size (µm)", "Typical width of one tissue node."),
    "n_superpixels": ("number of pieces", "Fixed number of tissue nodes instead of a size (empty = from the size)."),
    "compactness": ("compactness", "Higher gives rounder, more regular pieces; lower follows colour edges."),
    "sigma_um": ("smoothing (µm)", "Blur before cutting the tissue into pieces (empty = automatic)."),
    "max_iter": ("refinement rounds", "Iterations of the superpixel algorithm."),
    "slic_side_px": ("first cut size (px)", "Side of the small pieces that are merged into tissue nodes."),
    "merge_threshold": ("merge similar pieces below", "Colour difference under which neighbouring pieces merge."),
    "w_hist": ("weight of colour histogram", "How much the colour histogram counts when merging."),
    "w_mean": ("weight of mean colour", "How much the mean colour counts when merging."),
    "min_tissue_fraction": ("least tissue in a piece", "Pieces with less tissue than this fraction are dropped."),
    # --- training -------------------------------------------------------------------------------
    "batch_size": ("graphs per step", "Patch graphs learnt from at each training step."),
    "epochs": ("passes over the data", "Used when 'training steps' is empty."),
    "max_steps": ("training steps", "Stop after this many steps (empty = 'passes over the data')."),
    "micro_batch_size": (
        "graphs per chunk",
        "Split each step into chunks of this many graphs to save memory (empty = one chunk).",
    ),
    "lr": ("learning rate", "Step size of the optimiser."),
    "weight_decay": ("weight decay", "Pulls the weights towards zero (AdamW)."),
    "grad_clip": ("gradient clip", "Largest gradient norm applied in one step."),
    "warmup_steps": ("warm-up steps", "Steps over which the learning rate ramps up from zero."),
    "plateau_factor": ("slow-down factor", "Learning rate × this when the loss stops improving."),
    "plateau_patience": ("patience (checks)", "Checks without improvement before slowing down."),
    "plateau_every_epochs": ("check every (passes)", "How often the loss is checked for a plateau."),
    "min_lr": ("lowest learning rate", "The learning rate is never lowered below this."),
    "seed": ("random seed", "Same seed, same settings: same run."),
    "device": ("run on", "auto picks the GPU when there is one, else the CPU."),
    "precision": (
        "number precision",
        "fp32 is safest; bf16/fp16 are faster on recent GPUs, bf16 also on CPUs with AVX512-BF16 or AMX. "
        "Only what trains on the chosen device is offered.",
    ),
    "checkpoint_every_epochs": ("save every (passes)", "How often the model is saved while training."),
    "max_bad_steps": ("stop after bad steps", "Consecutive steps with a non-finite loss before the run stops."),
    # --- network --------------------------------------------------------------------------------
    "feature_dim": ("input numbers per node", "Set by the entity images (3 × size²) or the VAE latents."),
    "embed_dim": ("embedding size", "Numbers per node inside the network."),
    "hidden_dim": ("hidden size", "Width of the graph layers."),
    "num_layers": ("graph layers", "Depth of the graph encoder."),
    "latent_mlp_dim": ("latent head size", "Width of the latent projection."),
    "joint_depth": ("joint blocks", "Blocks that mix node and edge information."),
    "num_heads": ("attention heads", "Heads of each attention layer."),
    "time_mlp_dim": ("noise-level embedding size", "Width of the diffusion-time embedding."),
    "block_mlp_dim": ("block MLP size", "Width of each block's MLP."),
    "index_rope": ("rotary position code", "Encode node order with rotary embeddings."),
    "rope_theta": ("rotary base", "Base of the rotary embedding frequencies."),
    "centroid_encoding": ("encode positions", "Give the network each node's position."),
    "centroid_scale": ("position scale (px)", "Distance that counts as 1 in the position code."),
    "target_input": ("hidden nodes get", "noised: the noised features; mask_token: a learnt placeholder."),
    "edge_branch": ("edge branch", "Also reconstruct edges."),
    # --- entity VAE -----------------------------------------------------------------------------
    "downsample": ("shrink factor", "The VAE's latent grid is the image side ÷ this."),
    "latent_channels": ("latent channels", "Channels of the VAE's latent grid."),
    "base_channels": ("base channels", "Width of the VAE's first layer."),
    "kl_weight": ("KL weight", "Weight of the VAE's KL term."),
    "steps": ("VAE training steps", "Steps fitting the entity VAE before pre-training."),
}


def label_and_tooltip(name: str) -> tuple[str, str]:
    """The label and tooltip of config field ``name`` (its name with spaces, and no tooltip, if unknown)."""
    return FIELD_TEXT.get(name, (name.replace("_", " "), ""))
