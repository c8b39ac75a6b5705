"""Entities of H&E images: tissue superpixels and nuclei, as label images plus per-entity tables."""

from hmgdm_core.entities.adjacency import label_adjacency
from hmgdm_core.entities.geojson_nuclei import nuclei_from_geojson
from hmgdm_core.entities.instance_metrics import instance_scores
from hmgdm_core.entities.nuclei import NucleiConfig, nuclei_entities, nuclei_from_labels
from hmgdm_core.entities.stain import as_rgb, stain_od
from hmgdm_core.entities.superpixels import SuperpixelConfig, block_mean, tissue_entities
from hmgdm_core.entities.table import SHAPE_COLUMNS, Entities, measure_entities, relabel_sequential

__all__ = [
    "SHAPE_COLUMNS",
    "Entities",
    "NucleiConfig",
    "SuperpixelConfig",
    "as_rgb",
    "block_mean",
    "instance_scores",
    "label_adjacency",
    "measure_entities",
    "nuclei_entities",
    "nuclei_from_geojson",
    "nuclei_from_labels",
    "relabel_sequential",
    "stain_od",
    "tissue_entities",
]
