"""Arrays behind the napari overlays: patch grids, mask schedules, painted reconstructions, patch predictions.

Plain functions and dataclasses returning numpy arrays, so the plugin only turns them into layers.
"""

from hmgdm_core.overlays.mask_schedule import (
    CONDITION,
    HIDDEN,
    TARGET,
    MaskSchedule,
    MaskScheduleRecorder,
    edge_vectors,
    label_roles,
    mask_roles,
    roles,
)
from hmgdm_core.overlays.patch_grid import PatchGrid
from hmgdm_core.overlays.patch_predictions import (
    EntityPoints,
    PatchProbe,
    class_map,
    cluster_patches,
    entity_points,
    fit_patch_probe,
    save_predictions,
)
from hmgdm_core.overlays.reconstruction_paint import (
    ReconstructionViews,
    entity_value_map,
    node_errors,
    node_window_errors,
    paint_reconstruction,
    paint_windows,
)

__all__ = [
    "CONDITION",
    "HIDDEN",
    "TARGET",
    "EntityPoints",
    "MaskSchedule",
    "MaskScheduleRecorder",
    "PatchGrid",
    "PatchProbe",
    "ReconstructionViews",
    "class_map",
    "cluster_patches",
    "edge_vectors",
    "entity_points",
    "entity_value_map",
    "fit_patch_probe",
    "label_roles",
    "mask_roles",
    "node_errors",
    "node_window_errors",
    "paint_reconstruction",
    "paint_windows",
    "roles",
    "save_predictions",
]
