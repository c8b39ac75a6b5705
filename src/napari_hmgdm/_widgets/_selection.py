"""The "which slide, which region" part shared by the graph and training widgets."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import ComboBox, Container, FloatSpinBox, create_widget

from hmgdm_core.errors import RegionError
from hmgdm_core.io import Region
from napari_hmgdm._region import region_from_shape, region_from_view, slide_of

if TYPE_CHECKING:
    import napari

__all__ = ["RegionPicker"]

DRAWN = "selected shape"
VIEW = "field of view"


class RegionPicker(Container):
    """Slide layer, region source (the selected shape or the field of view) and analysis µm/px."""

    def __init__(self, mpp: float = 0.5) -> None:
        self.image = create_widget(annotation="napari.layers.Image", label="slide", name="image")
        self.source = ComboBox(choices=[DRAWN, VIEW], value=DRAWN, label="region", name="source")
        self.shapes = create_widget(
            annotation="napari.layers.Shapes", label="shapes", name="shapes", options={"nullable": True}
        )
        self.mpp = FloatSpinBox(value=mpp, min=0.05, max=64.0, step=0.05, label="analyse at µm/px", name="mpp")
        super().__init__(widgets=[self.image, self.source, self.shapes, self.mpp], labels=True)

    def selection(self) -> tuple[str, float, Region, np.ndarray | None]:
        """Read the viewer state (GUI thread only).

        Returns
        -------
        tuple
            ``(slide path, level-0 µm/px, region, polygon or None)``; the polygon is in level-0
            (y, x) pixels and ``None`` for rectangles and the field of view.

        Raises
        ------
        RegionError
            No slide layer, no shape selected or drawn, or a region off the slide.
        """
        image: napari.layers.Image | None = self.image.value
        if image is None:
            raise RegionError("Open a slide first (File ▸ Open, or File ▸ Open Sample ▸ H-MGDM).")
        path, base_mpp, _ = slide_of(image)
        mpp = max(float(self.mpp.value), base_mpp)
        if self.source.value == VIEW:
            return path, base_mpp, region_from_view(image, mpp), None
        shapes: napari.layers.Shapes | None = self.shapes.value
        if shapes is None or len(shapes.data) == 0:
            raise RegionError("Draw a rectangle or polygon in a Shapes layer, or choose 'field of view'.")
        selected = sorted(shapes.selected_data)
        index = selected[0] if selected else len(shapes.data) - 1
        region, polygon = region_from_shape(shapes, index, image, mpp)
        is_rectangle = shapes.shape_type[index] == "rectangle"
        return path, base_mpp, region, None if is_rectangle else polygon
