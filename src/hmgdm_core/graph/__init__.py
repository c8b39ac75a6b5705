"""Entity graphs (tissue superpixels, nuclei) as ``torch_geometric`` data, their storage and datasets."""

from hmgdm_core.graph.build import GraphConfig, entities_for, graph_from_entities, graph_from_image
from hmgdm_core.graph.contract import ENTITY_KINDS, EntityGraph, collate, validate_graph
from hmgdm_core.graph.dataset import GraphDataset, dataset_from_folder, dataset_from_region
from hmgdm_core.graph.region_graph import build_graph, graph_summary
from hmgdm_core.graph.storage import load_graph, save_graph
from hmgdm_core.graph.tiling import RegionSource, tiled_graph
from hmgdm_core.graph.topology import delaunay_pairs, directed_edges, knn_pairs
from hmgdm_core.graph.windows import gather_windows

__all__ = [
    "ENTITY_KINDS",
    "EntityGraph",
    "GraphConfig",
    "GraphDataset",
    "RegionSource",
    "build_graph",
    "collate",
    "dataset_from_folder",
    "dataset_from_region",
    "delaunay_pairs",
    "directed_edges",
    "entities_for",
    "gather_windows",
    "graph_from_entities",
    "graph_from_image",
    "graph_summary",
    "knn_pairs",
    "load_graph",
    "save_graph",
    "tiled_graph",
    "validate_graph",
]
