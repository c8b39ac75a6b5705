"""The "which slide, which region" part shared by the widgets: it follows what the user draws.

The region picker keeps its slide and Shapes choices in step with the viewer: a slide opened with
this plugin is chosen when none is, the Shapes layer made active or added last is chosen (so a
rectangle drawn before or after the widget opens is used without touching the drop-down), a removed
layer gives way to the next one, and a line under the drop-downs says which shape will be used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import ComboBox, Container, FloatSpinBox, Label

from hmgdm_core.errors import RegionError
from hmgdm_core.io import Region
from napari_hmgdm._region import region_from_shape, region_from_view, slide_of

if TYPE_CHECKING:
    import napari

__all__ = ["RegionPicker"]

DRAWN = "drawn shape"
VIEW = "whole view on screen"


def _is_shapes(layer) -> bool:
    from napari.layers import Shapes

    return isinstance(layer, Shapes)


def _is_slide(layer) -> bool:
    from napari.layers import Image

    return isinstance(layer, Image) and "hmgdm_path" in layer.metadata


class RegionPicker(Container):
    """Slide layer, region source (a drawn shape or the view on screen) and the resolution to analyse at.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer whose layers are offered and followed.
    mpp : float
        Initial resolution (µm per pixel) to read the region at.
    """

    def __init__(self, viewer: napari.viewer.Viewer, mpp: float = 0.5) -> None:
        self._viewer = viewer
        self.image = ComboBox(choices=self._slide_choices, label="slide", name="image", nullable=True)
        self.image.tooltip = "The slide to analyse (opened with File ▸ Open or File ▸ Open Sample ▸ H-MGDM)."
        self.source = ComboBox(choices=[DRAWN, VIEW], value=DRAWN, label="region", name="source")
        self.source.tooltip = "Analyse the shape you drew (rectangle or polygon), or everything visible on screen."
        self.shapes = ComboBox(choices=self._shapes_choices, label="shapes layer", name="shapes", nullable=True)
        self.shapes.tooltip = (
            "The layer holding your drawing; follows the layer you select or draw in. The selected shape is "
            "used, else the last one drawn."
        )
        self.mpp = FloatSpinBox(value=mpp, min=0.05, max=64.0, step=0.05, label="resolution (µm/px)", name="mpp")
        self.mpp.tooltip = (
            "Read the region at this many micrometres per pixel: 0.25 ≈ 40x, 0.5 ≈ 20x, 1 ≈ 10x. "
            "Coarser is faster; it is never finer than the slide."
        )
        self.using = Label(value="", name="using", label=" ")
        self.using.native.setWordWrap(True)
        super().__init__(widgets=[self.image, self.source, self.shapes, self.using, self.mpp], labels=True)
        self._connections: list[tuple[object, Callable]] = []
        self._watch(viewer.layers.events.inserted, self._on_inserted)
        self._watch(viewer.layers.events.removed, self._on_removed)
        self._watch(viewer.layers.selection.events.active, self._on_active)
        for layer in viewer.layers:
            self._follow(layer)
        self.shapes.changed.connect(self._describe)
        self.source.changed.connect(self._describe)
        connections = self._connections
        # Closing the dock deletes the Qt widgets: stop the viewer calling into them.
        self.native.destroyed.connect(lambda *_: _disconnect_all(connections))
        self._pick_defaults()

    # --- following the viewer ------------------------------------------------------------------------------
    def _watch(self, emitter, callback: Callable) -> None:
        emitter.connect(callback)
        self._connections.append((emitter, callback))

    def _follow(self, layer) -> None:
        if _is_shapes(layer):
            _clear_default_fill(layer)
            self._watch(layer.events.data, lambda event, layer=layer: self._on_drawn(layer))
            self._watch(layer.events.highlight, lambda event: self._describe())

    def _slide_choices(self, _widget=None) -> list[tuple[str, object]]:
        return [(layer.name, layer) for layer in self._viewer.layers if _is_slide(layer)]

    def _shapes_choices(self, _widget=None) -> list[tuple[str, object]]:
        return [(layer.name, layer) for layer in self._viewer.layers if _is_shapes(layer)]

    def _newest_shapes(self):
        """The active Shapes layer if it holds a shape, else the topmost one holding a shape, else any."""
        active = self._viewer.layers.selection.active
        candidates = [layer for layer in reversed(self._viewer.layers) if _is_shapes(layer)]
        drawn = [layer for layer in candidates if len(layer.data)]
        if _is_shapes(active) and len(active.data):
            return active
        return (drawn or candidates or [None])[0]

    def _pick_defaults(self) -> None:
        self.image.reset_choices()
        self.shapes.reset_choices()
        if self.image.value is None or self.image.value not in self._viewer.layers:
            slides = self._slide_choices()
            self.image.value = slides[-1][1] if slides else None
        if self.shapes.value is None or self.shapes.value not in self._viewer.layers:
            self.shapes.value = self._newest_shapes()
        self._describe()

    def _on_inserted(self, event) -> None:
        layer = event.value
        self._follow(layer)
        self.image.reset_choices()
        self.shapes.reset_choices()
        if _is_shapes(layer):
            self.shapes.value = layer
        self._pick_defaults()

    def _on_removed(self, event) -> None:
        if self.shapes.value is event.value:
            self.shapes.value = None
        if self.image.value is event.value:
            self.image.value = None
        self._pick_defaults()

    def _on_active(self, event) -> None:
        if _is_shapes(event.value):
            self.shapes.reset_choices()
            self.shapes.value = event.value
            self._describe()

    def _on_drawn(self, layer) -> None:
        _clear_default_fill(layer)
        current = self.shapes.value
        if current is None or current is layer or not len(current.data):
            self.shapes.value = layer
        self._describe()

    # --- what will be used ---------------------------------------------------------------------------------
    def _shape_index(self, shapes) -> tuple[int, str]:
        selected = sorted(i for i in shapes.selected_data if i < len(shapes.data))
        if selected:
            return selected[0], "selected"
        return len(shapes.data) - 1, "last drawn"

    def _describe(self, *_) -> None:
        if self.source.value == VIEW:
            self.using.value = "Uses everything visible on screen."
            return
        shapes = self.shapes.value
        if shapes is None or not len(shapes.data):
            self.using.value = "Draw a rectangle or polygon (Shapes layer tools) on the slide."
            return
        index, why = self._shape_index(shapes)
        kind = shapes.shape_type[index]
        self.using.value = f"Uses the {why} {kind} ({index + 1} of {len(shapes.data)}) in '{shapes.name}'."

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
        self._pick_defaults()
        image: napari.layers.Image | None = self.image.value
        if image is None:
            raise RegionError("Open a slide first (File ▸ Open, or File ▸ Open Sample ▸ H-MGDM).")
        path, base_mpp, _ = slide_of(image)
        mpp = max(float(self.mpp.value), base_mpp)
        if self.source.value == VIEW:
            return path, base_mpp, region_from_view(image, mpp), None
        shapes: napari.layers.Shapes | None = self.shapes.value
        if shapes is None or len(shapes.data) == 0:
            raise RegionError("Draw a rectangle or polygon in a Shapes layer, or choose 'whole view on screen'.")
        index, _ = self._shape_index(shapes)
        region, polygon = region_from_shape(shapes, index, image, mpp)
        is_rectangle = shapes.shape_type[index] == "rectangle"
        return path, base_mpp, region, None if is_rectangle else polygon


def _clear_default_fill(layer) -> None:
    """Draw without napari's default white fill, which hides the tissue inside a region.

    Only a fill nobody chose is cleared: the layer's next shapes, and existing shapes all filled with
    the default opaque white.
    """
    white = np.array([1.0, 1.0, 1.0, 1.0])
    if np.allclose(_rgba(layer.current_face_color), white):
        layer.current_face_color = "transparent"
    faces = np.asarray(layer.face_color)
    if len(faces) and np.allclose(faces, white):
        layer.face_color = "transparent"


def _rgba(colour) -> np.ndarray:
    from matplotlib.colors import to_rgba

    return np.asarray(to_rgba(colour))


def _disconnect_all(connections: list[tuple[object, Callable]]) -> None:
    for emitter, callback in connections:
        emitter.disconnect(callback)
    connections.clear()
