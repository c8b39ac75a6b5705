"""Diffusion reconstructions: noise a region's target entities at t and show the model's reconstruction.

The mode follows the checkpoint: a run trained on entity-VAE latents left ``vae.pt`` beside its checkpoints
(or a VAE is chosen by hand), and its decoded windows are pasted at the entities; otherwise the features are
the raw windows, pasted directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import ComboBox, FileEdit, ProgressBar, PushButton, Slider, SpinBox
from napari.layers import Layer
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error

from hmgdm_core.errors import InputError
from hmgdm_core.graph import ENTITY_KINDS, GraphConfig
from napari_hmgdm._layers import heatmap_kwargs, patch_layer_data
from napari_hmgdm._widgets._bundled import BUNDLED_TOOLTIP, bundled_checkpoint
from napari_hmgdm._widgets._dock import ScrollingDock
from napari_hmgdm._widgets._selection import RegionPicker
from napari_hmgdm._widgets._status import StatusLine
from napari_hmgdm._workers import ReconstructionRequest, ReconstructionResult, reconstruction_job

if TYPE_CHECKING:
    import napari

__all__ = ["ReconstructionWidget", "chosen_vae"]

# One graph is reconstructed at a time; keep it to what a screen shows at once.
MAX_SIDE_PX = 1024
# What reconstruction_job yields, in order, and how the status line says it.
STAGES = ("reading", "graph", "reconstructing")
STAGE_TEXT = {"reading": "Reading the region and the model", "graph": "Finding the entities",
              "reconstructing": "Noising and reconstructing the targets"}  # fmt: skip


def error_limits(error: np.ndarray) -> tuple[float, float]:
    """Colour range of an error map: 0 to its 99th percentile over the targets (NaN elsewhere)."""
    values = error[np.isfinite(error)]
    top = float(np.percentile(values, 99)) if values.size else 1.0
    return 0.0, top if top > 0 else 1.0


def chosen_vae(picker: FileEdit) -> Path | None:
    """The VAE file of an optional picker; ``None`` when empty.

    Raises
    ------
    InputError
        A path that is not a file.
    """
    if picker.value is None or str(picker.value) in ("", "."):
        return None
    path = Path(picker.value)
    if not path.is_file():
        raise InputError(f"No entity VAE file at {path}: choose the vae.pt of the training run, or clear the field.")
    return path


class ReconstructionWidget(ScrollingDock):
    """Original, noised and reconstructed views of a region as aligned, toggleable layers, plus an error map."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self._viewer = viewer
        self._worker = None
        self.result: ReconstructionResult | None = None
        self.picker = RegionPicker(viewer, mpp=1.0)
        self.checkpoint = FileEdit(mode="r", filter="*.pt", label="trained model", **bundled_checkpoint())
        self.checkpoint.tooltip = BUNDLED_TOOLTIP
        self.vae = FileEdit(mode="r", filter="*.pt", label="entity VAE", nullable=True)
        self.vae.tooltip = "optional: default the vae.pt beside the checkpoint, for runs trained on VAE latents"
        self.kind = ComboBox(choices=list(ENTITY_KINDS), value="tissue", label="entities")
        self.kind.tooltip = "Use the entities the model was trained on."
        self.t = Slider(value=500, min=0, max=999, label="noise level (0–999)")
        self.t.tooltip = "Diffusion step t: how much noise hides the target entities before the model rebuilds them."
        self.seed = SpinBox(value=0, min=0, max=2**31 - 1, label="random seed")
        self.seed.tooltip = "Chooses which entities are hidden (targets) and the noise; same seed, same picture."
        self.run_button = PushButton(text="Reconstruct")
        self.progress = ProgressBar(min=0, max=len(STAGES), value=0, label="progress")
        self.status = StatusLine()
        super().__init__([self.picker, self.checkpoint, self.vae, self.kind, self.t, self.seed, self.run_button,
                          self.progress, self.status])  # fmt: skip
        self.run_button.changed.connect(self._on_run)

    @property
    def running(self) -> bool:
        """Whether a reconstruction is in progress."""
        return self._worker is not None

    def _on_run(self) -> None:
        if self._worker is not None:
            self.status.value = "Cancelling…"
            self._worker.quit()
            return
        try:
            path, base_mpp, region, _ = self.picker.selection()
            if max(region.shape) > MAX_SIDE_PX:
                raise InputError(
                    f"The region is {region.shape} px at {region.mpp} µm/px; choose at most "
                    f"{MAX_SIDE_PX} px a side (a smaller box or a coarser µm/px)."
                )
            checkpoint = Path(self.checkpoint.value)
            if not checkpoint.is_file():
                raise InputError("Choose a model checkpoint (.pt) written by training.")
            request = ReconstructionRequest(
                path,
                base_mpp,
                region,
                GraphConfig(kind=self.kind.value),
                checkpoint,
                int(self.t.value),
                int(self.seed.value),
                chosen_vae(self.vae),
            )
        except (InputError, ValueError) as err:
            self.status.error(str(err))  # in red where the user looks; no toast left behind
            return
        self.start(request)

    def start(self, request: ReconstructionRequest) -> None:
        """Run :func:`~napari_hmgdm._workers.reconstruction_job` in a worker thread (the button cancels it)."""
        worker = create_worker(
            reconstruction_job, request, _start_thread=False, _ignore_errors=True
        )  # shown by the errored handler, not re-raised
        worker.yielded.connect(self._on_stage)
        worker.returned.connect(lambda result: self._show(result, request))
        worker.errored.connect(self._on_error)
        worker.aborted.connect(lambda: setattr(self.status, "value", "Cancelled."))
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self.run_button.text = "Cancel"
        self.progress.value = 0
        self.status.value = "Starting…"
        worker.start()

    def _on_stage(self, stage: str) -> None:
        self.progress.value = STAGES.index(stage) if stage in STAGES else self.progress.value
        self.status.value = f"{STAGE_TEXT.get(stage, stage)}…"

    def _on_error(self, err: Exception) -> None:
        self.status.error(f"Failed: {err}")
        show_error(f"Reconstruction failed: {err}")

    def _on_finished(self) -> None:
        self._worker = None
        self.run_button.text = "Reconstruct"

    def _show(self, result: ReconstructionResult, request: ReconstructionRequest) -> None:
        self.result = result
        region = request.region.to_dict()
        views = [
            (result.original, "original", {"rgb": True, "visible": False}),
            (result.noised, f"noised (t={request.t})", {"rgb": True, "visible": False}),
            (result.reconstructed, f"reconstructed (t={request.t})", {"rgb": True}),
            (np.nan_to_num(result.error, nan=0.0), "reconstruction error",
             heatmap_kwargs(error_limits(result.error)) | {"visible": False}),
        ]  # fmt: skip
        for data, name, extra in views:
            for old in [layer.name for layer in self._viewer.layers if layer.name.startswith(name.split(" (")[0])]:
                self._viewer.layers.remove(old)
            data_, kwargs, kind = patch_layer_data(data, region, name, "image")
            kwargs["metadata"] |= {"hmgdm_mode": result.mode}
            layer = self._viewer.add_layer(Layer.create(data_, kwargs | extra, kind))
        layer.colorbar.visible = True  # the error map's scale, shown when the layer is
        self.progress.value = self.progress.max
        self.status.value = (
            f"{result.targets} target entities noised at t={request.t} and reconstructed "
            f"({result.mode}); toggle the layers to compare."
        )
