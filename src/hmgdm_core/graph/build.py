"""Entity graphs from entities: topology, windows, measurements, in the contract's layout.

Tissue graphs join superpixels that share boundary pixels (region adjacency, with the shared
boundary length as an edge measurement). Nuclei graphs join each nucleus to its k nearest
neighbours within a maximum distance (histocartography's cell graph: k = 5, 50 px at 40x =
12.5 µm), or use a Delaunay triangulation with a maximum edge length.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from hmgdm_core.entities.adjacency import label_adjacency
from hmgdm_core.entities.nuclei import NucleiConfig, nuclei_entities
from hmgdm_core.entities.stain import as_rgb, check_mpp
from hmgdm_core.entities.superpixels import SuperpixelConfig, block_mean, tissue_entities
from hmgdm_core.entities.table import Entities
from hmgdm_core.errors import InputError
from hmgdm_core.graph.assemble import assemble_graph, edge_measurements, node_measurements
from hmgdm_core.graph.contract import ENTITY_KINDS, EntityGraph
from hmgdm_core.graph.topology import delaunay_pairs, knn_pairs
from hmgdm_core.graph.windows import gather_windows
from hmgdm_core.io.region import Region
from hmgdm_core.tissue import TissueConfig, tissue_mask_from_rgb

__all__ = [
    "MASK_MPP",
    "GraphConfig",
    "entities_for",
    "graph_from_entities",
    "graph_from_image",
    "pair_edges",
    "tissue_mask_for",
]


@dataclass(frozen=True)
class GraphConfig:
    """How an entity graph is built from an image.

    Parameters
    ----------
    kind : str
        ``'tissue'`` (superpixels, the paper's nodes) or ``'nuclei'``.
    window : int
        Side in pixels of the node and edge windows (32: 3 × 32 × 32 = 3072 features).
    superpixels : SuperpixelConfig
        Tissue entity parameters (used when ``kind='tissue'``).
    nuclei : NucleiConfig
        Nuclei segmentation parameters (used when ``kind='nuclei'``).
    restrict_to_tissue : bool
        Tissue graphs: drop superpixels off the tissue mask
        (:func:`hmgdm_core.tissue.tissue_mask_from_rgb`). Patch collections that include glass
        or fat on purpose (Kather's EMPTY and ADIPOSE classes) get empty graphs for those
        patches; pass False to keep every superpixel.
    tissue : TissueConfig
        Tissue-mask parameters for ``restrict_to_tissue``. The slide-level defaults drop tissue
        pieces under 5,000 µm², nearly a whole 150² patch at 20x; here pieces and holes under
        100 µm² (a few cells) are dropped or filled.
    nuclei_topology : str
        ``'knn'`` or ``'delaunay'`` (nuclei graphs).
    k : int
        Neighbours per nucleus for ``'knn'`` (5).
    max_distance_um : float
        Longest nuclei edge in µm (kNN distance or Delaunay edge length; 12.5 µm = 50 px at 40x).
    shape_features : bool
        Add shape descriptors to ``node_meas`` (slower: ``regionprops``).
    """

    kind: str = "tissue"
    window: int = 32
    superpixels: SuperpixelConfig = field(default_factory=SuperpixelConfig)
    nuclei: NucleiConfig = field(default_factory=NucleiConfig)
    restrict_to_tissue: bool = True
    tissue: TissueConfig = field(default_factory=lambda: TissueConfig(min_object_um2=100.0, max_hole_um2=100.0))
    nuclei_topology: str = "knn"
    k: int = 5
    max_distance_um: float = 12.5
    shape_features: bool = False

    def to_dict(self) -> dict:
        """A JSON-safe dict (nested configs as dicts); :meth:`from_dict` restores the config."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> GraphConfig:
        """Rebuild a config written by :meth:`to_dict`; missing keys take their defaults."""
        d = dict(d)
        if "superpixels" in d:
            d["superpixels"] = SuperpixelConfig(**d["superpixels"])
        if "nuclei" in d:
            d["nuclei"] = NucleiConfig(**d["nuclei"])
        if "tissue" in d:
            d["tissue"] = TissueConfig(**d["tissue"])
        return cls(**d)

    def __post_init__(self) -> None:
        if self.kind not in ENTITY_KINDS:
            raise InputError(f"GraphConfig.kind must be one of {ENTITY_KINDS}, got {self.kind!r}.")
        if self.nuclei_topology not in ("knn", "delaunay"):
            raise InputError(f"nuclei_topology must be 'knn' or 'delaunay', got {self.nuclei_topology!r}.")
        if self.window < 1 or self.k < 1 or not self.max_distance_um > 0:
            raise InputError("window and k must be at least 1 and max_distance_um positive.")


MASK_MPP = 2.0
"""µm per pixel at which tissue masks are computed (they only decide which superpixels to keep)."""


def tissue_mask_for(rgb: np.ndarray, mpp: float, config: TissueConfig) -> np.ndarray:
    """Tissue mask of an image, computed on a copy reduced to about :data:`MASK_MPP`.

    Parameters
    ----------
    rgb : ndarray, shape (rows, cols, 3), uint8
        The image.
    mpp : float
        Its µm per pixel.
    config : TissueConfig
        Thresholds and size filters (:attr:`GraphConfig.tissue`).

    Returns
    -------
    ndarray, shape (ceil(rows / f), ceil(cols / f)), bool
        True on tissue, with f = max(1, round(MASK_MPP / mpp)) image pixels per mask pixel.
    """
    factor = max(1, min(round(MASK_MPP / mpp), *rgb.shape[:2]))
    return tissue_mask_from_rgb(block_mean(as_rgb(rgb), factor), mpp * factor, config)


def entities_for(rgb: np.ndarray, mpp: float, config: GraphConfig, tissue_mask: np.ndarray | None = None) -> Entities:
    """The entities ``config`` asks for in one image.

    Parameters
    ----------
    rgb : ndarray, shape (rows, cols, 3), uint8
        The image.
    mpp : float
        µm per pixel.
    config : GraphConfig
        Entity kind and parameters.
    tissue_mask : ndarray of bool, optional
        Tissue graphs with ``restrict_to_tissue``: the mask over the image's field of view at
        any resolution; computed with :func:`tissue_mask_for` when not given.

    Returns
    -------
    Entities
    """
    if config.kind == "nuclei":
        return nuclei_entities(rgb, mpp, config.nuclei, shape=config.shape_features)
    if config.restrict_to_tissue and tissue_mask is None:
        tissue_mask = tissue_mask_for(rgb, mpp, config.tissue)
    mask = tissue_mask if config.restrict_to_tissue else None
    return tissue_entities(rgb, mpp, config.superpixels, mask, shape=config.shape_features)


def pair_edges(entities: Entities, config: GraphConfig) -> tuple[np.ndarray, np.ndarray]:
    """Undirected node pairs of an entity set and their measurements.

    Parameters
    ----------
    entities : Entities
        The nodes.
    config : GraphConfig
        Topology parameters.

    Returns
    -------
    pairs : ndarray, shape (P, 2), int64
        0-based node pairs ``a < b``.
    boundary_px : ndarray, shape (P,), float64
        Shared boundary length in pixels (tissue graphs; zeros for nuclei graphs).
    """
    if entities.kind == "tissue":
        pairs, boundary = label_adjacency(entities.labels)
        return pairs - 1, boundary.astype(np.float64)
    points = entities.centroids * entities.mpp
    if config.nuclei_topology == "knn":
        pairs = knn_pairs(points, config.k, config.max_distance_um)
    else:
        pairs = delaunay_pairs(points, config.max_distance_um)
    return pairs, np.zeros(len(pairs))


def graph_from_entities(entities: Entities, rgb: np.ndarray, region: Region, config: GraphConfig) -> EntityGraph:
    """The entity graph of entities found in the image of ``region``.

    Parameters
    ----------
    entities : Entities
        Entities of ``rgb`` (from :func:`entities_for`, or given, e.g. by
        :func:`~hmgdm_core.entities.nuclei_from_labels`).
    rgb : ndarray, shape region.shape + (3,), uint8
        The image read for ``region``.
    region : Region
        Where the image lies on the slide; maps node points to level-0 (y, x) pixels.
    config : GraphConfig
        Topology and window size.

    Returns
    -------
    EntityGraph
        Following :mod:`hmgdm_core.graph.contract`.
    """
    rgb = as_rgb(rgb)
    if rgb.shape[:2] != entities.labels.shape:
        raise InputError(f"Image {rgb.shape[:2]} and entity labels {entities.labels.shape} differ in size.")
    points = entities.centroids
    pairs, boundary = pair_edges(entities, config)
    midpoints = (points[pairs[:, 0]] + points[pairs[:, 1]]) / 2 if len(pairs) else np.zeros((0, 2))
    node_meas, node_names = node_measurements(entities.table, config.shape_features)
    pair_meas, edge_names = edge_measurements(points, pairs, boundary, entities.kind, entities.mpp)
    return assemble_graph(
        kind=entities.kind,
        x=gather_windows(rgb, points, config.window),
        pairs=pairs,
        pair_attr=gather_windows(rgb, midpoints, config.window),
        pair_meas=pair_meas,
        edge_meas_names=edge_names,
        node_meas=node_meas,
        node_meas_names=node_names,
        pos=region.to_level0(points),
        entity_id=entities.table["id"],
        mpp=entities.mpp,
        region=region,
        window=config.window,
    )


def graph_from_image(
    rgb: np.ndarray, mpp: float, config: GraphConfig = GraphConfig(), region: Region | None = None
) -> EntityGraph:
    """Segment entities in one image and build their graph (no tiling).

    Parameters
    ----------
    rgb : ndarray, shape (rows, cols, 3), uint8
        The image.
    mpp : float
        Its µm per pixel.
    config : GraphConfig
        What to build.
    region : Region, optional
        Where the image lies on a slide; default: the image itself as level 0.

    Returns
    -------
    EntityGraph
    """
    rgb = as_rgb(rgb)
    mpp = check_mpp(mpp)
    if region is None:
        region = Region(0, 0, rgb.shape[0], rgb.shape[1], float(mpp))
    elif region.shape != rgb.shape[:2]:
        raise InputError(f"The image {rgb.shape[:2]} is not the size of its region {region.shape}.")
    return graph_from_entities(entities_for(rgb, mpp, config), rgb, region, config)
