"""Hyper-parameters of the stage-2 network: released widths, our default input pipeline (method-spec §6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hmgdm_core.config_checks import check_at_least, check_fields, check_positive
from hmgdm_core.errors import InputError

__all__ = ["ModelConfig"]


@dataclass(frozen=True)
class ModelConfig:
    """Widths and switches of :class:`~hmgdm_core.model.HMGDM`.

    The widths are the released configuration (hidden 256, L = 3, joint depth 2, 4 heads). The input pipeline
    is our default recipe (``docs/representation.md``): per-feature dataset standardisation instead of the input
    LayerNorm, and the encoder mask tokens of ``context`` masking. The released network is
    ``PRESETS["paper"].model`` (``hmgdm_core.train.config``), whose live parameters match the released model's
    count block by block (§6.6), with one named deviation: the released index RoPE is off (``index_rope=True``
    restores it for parity) because it ties the model to the arbitrary order of the entities in their graph
    (method-spec §11 #17, §13.6) and costs a third of the embedding time on CPU. It has no parameters.
    """

    feature_dim: int = 3072
    """F, the width of node and edge features (3 × 32 × 32 windows or stage-1 latents)."""
    embed_dim: int = 512
    """Width of the input embeddings LayerNorm(F) → Linear(F → embed_dim)."""
    hidden_dim: int = 256
    """Width of the encoder layers, latents, decoder tokens and time embedding."""
    num_layers: int = 3
    """L, the encoder depth; the decoder has one joint stage and L-1 decode blocks."""
    latent_mlp_dim: int = 64
    """Bottleneck of the Gaussian heads Linear(H→H) → Linear(H→b) → ReLU → Linear(b→H)."""
    joint_depth: int = 2
    """Transformer layers of the joint decoder stage (nodes and edges each)."""
    num_heads: int = 4
    """Attention heads in the joint transformers and cross-attentions."""
    time_mlp_dim: int = 1024
    """Hidden width of the time-embedding MLP."""
    block_mlp_dim: int = 128
    """Bottleneck of each decode block's per-entity linear map."""
    head_dims: tuple[int, int] = (256, 512)
    """Hidden widths of the output heads H → 256 → 512 → F."""
    index_rope: bool = False
    """Rotate input features by the entity's index in its graph (θ = 1000), as the released code does (parity)."""
    rope_theta: float = 1000.0
    """Base of the index RoPE frequencies θ_k = theta^(-2k/F)."""
    centroid_encoding: bool = False
    """Add a sinusoidal encoding of the entity's (y, x) centroid to its input embedding (our option)."""
    centroid_scale: float = 256.0
    """Pixels per unit of the centroid encoding (the released code divides positions by 256)."""
    target_input: Literal["noised", "mask_token"] = "noised"
    """What the decoder reads for a target entity: its ``noised`` features (H-MGDM), or a learned ``mask_token``
    of width F in place of its features, so the target's own features never reach the prediction (the
    GraphMAE-style ablation, trained with ``DiffusionConfig(fixed_t=0)``: mask and reconstruct, no diffusion)."""
    edge_branch: bool = True
    """Model the edges' features (H-MGDM). ``False`` is the paper's "w/o edge latents" ablation: edge features
    are never read, the encoder's GCN uses unit edge weights, edge latents are constant zeros (KL 0), the decoder
    has no edge tokens and the mask must draw no target edge (``MaskConfig(edge_ratio=0)``, no edge loss). The
    edges still carry the messages between nodes."""
    input_layernorm: bool = False
    """LayerNorm(F) on every entity's features before the input projection (released model). It removes each
    window's brightness and contrast; with ``standardise_inputs`` it can be switched off."""
    standardise_inputs: bool = True
    """Standardise node and edge features per feature with dataset statistics (mean, std) fitted once over the
    training graphs (:meth:`HMGDM.fit_standardisation`) and stored with the weights, so embedding and
    fine-tuning apply the same ones. Diffusion noise and targets then live in standardised units."""
    residual_decode: bool = False
    """Residual decode blocks, as the paper's figure draws them: each block's node cross-attention is added to the
    target tokens and its graph step and per-entity map are added to the tokens, where the released blocks
    replace the tokens with them (method-spec §6.4). Replaced, a target's own noised features are diluted by every
    block's graph step: the released decoder predicts from context and ignores x_t and t
    (``benchmarks/decoder_reliance.py``). Same parameters either way."""
    encoder_mask_token: bool = True
    """Learn the two tokens (width ``embed_dim``, nodes and edges) that ``MaskConfig(mode="context")`` shows the
    encoder in place of the targets' embeddings."""
    pair_tokens: bool = True
    """One decoder edge token per undirected pair where the released decoder has one per direction. The two
    directions of a pair share their window and, under ``strict`` and ``context`` masks, their fate; with this
    option a step also draws their diffusion and latent noise once (:func:`~hmgdm_core.model.draw_noise`), so
    their tokens would stay equal through every layer and the pair token computes the same function at about a
    third of the decoder's edge cost (its attention is quadratic in the tokens). Under masks that split pairs
    (``official``) the decoder keeps one token per direction. Needs ``index_rope=False``, whose angle differs
    between the directions."""

    def __post_init__(self) -> None:
        check_fields(self)
        for name in (
            "feature_dim",
            "embed_dim",
            "hidden_dim",
            "num_layers",
            "latent_mlp_dim",
            "joint_depth",
            "num_heads",
            "time_mlp_dim",
            "block_mlp_dim",
        ):
            check_at_least(self, name, 1)
        for name in ("rope_theta", "centroid_scale"):
            check_positive(self, name)
        if self.pair_tokens and self.index_rope:
            raise InputError(
                "ModelConfig(index_rope=True) rotates the two directions of an edge differently: set pair_tokens=False"
            )
        if min(self.head_dims) < 1:
            raise InputError(f"ModelConfig.head_dims must be ≥ 1, got {self.head_dims!r}")
