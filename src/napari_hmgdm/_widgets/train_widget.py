"""The "Train on selected region" widget: pre-train H-MGDM in a worker, with progress and cancel."""

from __future__ import annotations

import contextlib
import enum
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from magicgui.widgets import Container, ProgressBar, PushButton
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info

from hmgdm_core.errors import InputError
from hmgdm_core.graph import GraphConfig, GraphDataset
from hmgdm_core.io.atomic import atomic_path
from hmgdm_core.pretrained import DEFAULT_PRETRAINED, pretrained_config, pretrained_path
from hmgdm_core.train import (
    Cancelled,
    CancelToken,
    CheckpointWritten,
    Failed,
    Finished,
    MaskDrawn,
    Started,
    StepDone,
    latest_checkpoint,
    load_checkpoint,
)
from hmgdm_core.vae import VAEFinished, VAEStep
from napari_hmgdm._train_job import FollowedLabels, TrainRequest, train_job
from napari_hmgdm._widgets._dock import ScrollingDock
from napari_hmgdm._widgets._forms import collapsible
from napari_hmgdm._widgets._loss_plot import LossPlot
from napari_hmgdm._widgets._mask_schedule import MaskScheduleView
from napari_hmgdm._widgets._status import StatusLine
from napari_hmgdm._widgets._text import human_eta, short_path
from napari_hmgdm._widgets._train_form import BUNDLED, LATENT, RAW, SCRATCH, TrainForm

if TYPE_CHECKING:
    import napari

# The drop-downs' values are exported with the widget: its callers set ``features`` and ``start_from`` to them.
__all__ = ["BUNDLED", "LATENT", "RAW", "SCRATCH", "TrainState", "TrainWidget"]


def _stop_orphaned_run(live: dict) -> None:
    """Cancel the run of a deleted widget and cut its worker off from the deleted controls."""
    if "token" in live:
        live["token"].cancel()
    worker = live.get("worker")
    if worker is not None:
        for signal in (worker.yielded, worker.errored, worker.finished):
            with contextlib.suppress(TypeError, RuntimeError):  # nothing left connected
                signal.disconnect()


class TrainState(enum.Enum):
    """Where a training run stands; only the widget writes it."""

    IDLE = "idle"
    RUNNING = "running"
    CANCELLING = "cancelling"
    DONE = "done"
    STOPPED = "stopped"
    FAILED = "failed"


class TrainWidget(TrainForm, ScrollingDock):
    """Pre-train H-MGDM on the patch graphs of the selected region.

    The settings controls, and the run configuration they make, come from
    :class:`~napari_hmgdm._widgets._train_form.TrainForm`.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer (its layers feed the region picker).
    settings_path : Path, optional
        JSON file that remembers the settings (default: the user's config folder).
    """

    def __init__(self, viewer: napari.viewer.Viewer, settings_path: Path | None = None) -> None:
        self._viewer = viewer
        self._worker = None
        self._token: CancelToken | None = None
        # What a run needs stopped if the widget dies under it; the closure below must not hold the widget.
        self._live: dict = {}
        self._total_steps = 0
        self.state = TrainState.IDLE
        self._resume_offered = False
        self.checkpoint: Path | None = None

        dropped = self._make_settings_controls(viewer, settings_path)
        self.train_button = PushButton(text="Train")
        self.new_run_button = PushButton(text="New run")
        self.new_run_button.tooltip = "Start from scratch instead of continuing the stopped run."
        self.new_run_button.visible = False
        self.progress = ProgressBar(min=0, max=1, value=0, label="steps")
        self.status = StatusLine()
        if dropped:
            self.status.value = "Some saved settings could not be used (defaults instead): " + "; ".join(dropped)
        self.loss_plot = LossPlot()
        self.mask_schedule = MaskScheduleView(viewer)
        self.save_button = PushButton(text="Save checkpoint…")
        self.load_button = PushButton(text="Load checkpoint…")
        self.vae_section = collapsible("Entity VAE settings", self.vae_settings, expanded=False)
        super().__init__([
            self.picker, self.kind, self.patch_size, self.features, self.preset, self.train_settings, self.out_dir,
            self.start_from, self.train_button, self.new_run_button, self.progress, self.status, self.mask_schedule,
            Container(layout="horizontal", widgets=[self.save_button, self.load_button], labels=False),
        ])  # fmt: skip
        layout = self.body_layout()
        layout.insertWidget(self.body.index(self.status) + 1, self.loss_plot)
        self.loss_plot.setVisible(False)  # empty until a run starts
        layout.addWidget(collapsible("Network settings (advanced)", self.model_settings, expanded=False))
        layout.addWidget(self.vae_section)
        self.features.changed.connect(self._show_vae_settings)
        self._show_vae_settings(self.features.value)
        self.new_run_button.changed.connect(self._on_new_run_button)
        self.train_button.changed.connect(self._on_train_button)
        self.save_button.changed.connect(self._ask_save)
        self.load_button.changed.connect(self._ask_load)
        # Closing the viewer deletes this widget: the run then stops at its next step, checkpointed.
        live = self._live
        self.native.destroyed.connect(lambda *_: _stop_orphaned_run(live))

    def _show_vae_settings(self, features: str) -> None:
        self.vae_section.setVisible(features == LATENT)

    # --- running --------------------------------------------------------------------------------------------
    def _set_state(self, state: TrainState) -> None:
        self.state = state
        resumable = self.resumable
        self.train_button.text = {TrainState.RUNNING: "Cancel", TrainState.CANCELLING: "Cancelling…"}.get(
            state, "Resume" if resumable else "Train"
        )
        self.train_button.tooltip = (
            f"Continue from {self.checkpoint.name}, in its run folder." if resumable and self.checkpoint else None
        )
        self.train_button.enabled = state != TrainState.CANCELLING
        self.new_run_button.visible = resumable and state not in (TrainState.RUNNING, TrainState.CANCELLING)

    @property
    def dataset(self) -> GraphDataset | None:
        """The patch graphs of the current or last run (``None`` before its graphs are built)."""
        return self.mask_schedule.dataset

    @property
    def resumable(self) -> bool:
        """Whether *Train* continues a run: after a cancel, or once a checkpoint was loaded."""
        return self._resume_offered and self.checkpoint is not None and self.checkpoint.exists()

    def _on_train_button(self) -> None:
        if self.state == TrainState.RUNNING:
            self.cancel()
            return
        self._start_from_form(resume=self.resumable)

    def _on_new_run_button(self) -> None:
        self._start_from_form(resume=False)

    def _start_from_form(self, resume: bool) -> None:
        try:
            request = self.make_request(resume=resume)
        except (InputError, ValueError) as err:
            self.status.error(str(err))  # in red where the user looks; no toast left behind
            return
        self.start(request)

    def make_request(self, resume: bool = False) -> TrainRequest:
        """Copy the viewer selection and the forms into a request (GUI thread).

        Parameters
        ----------
        resume : bool
            Continue from the current checkpoint, in its run folder; else a new run folder from scratch.
        """
        path, base_mpp, region, _ = self.picker.selection()
        vae = self.vae_settings.config if self.features.value == LATENT else None
        checkpoint = self.checkpoint if resume and self.checkpoint and self.checkpoint.exists() else None
        if checkpoint is not None and checkpoint.parent.name.startswith("run-"):
            out_dir = checkpoint.parent
        else:
            out_dir = Path(self.out_dir.value) / f"run-{time.strftime('%Y%m%d-%H%M%S')}"
        config, init = self.pretrain_config(), None
        if checkpoint is None and self.start_from.value == BUNDLED:
            if vae is not None:
                raise InputError("The bundled model reads raw windows: choose 'from scratch' to train on entity-VAE "
                                 "features.")
            init = pretrained_path(DEFAULT_PRETRAINED)
            # Its weights fit only its own network, masking and noise; the optimisation settings are the form's.
            bundled = pretrained_config(DEFAULT_PRETRAINED)
            config = replace(bundled, train=config.train)
        return TrainRequest(
            slide_path=path,
            slide_mpp=base_mpp,
            region=region,
            patch_size=int(self.patch_size.value),
            # The VAE encodes windows of its own side; raw mode keeps the graph default (3 × 32 × 32 = F).
            graph_config=GraphConfig(kind=self.kind.value, **({"window": vae.window} if vae else {})),
            pretrain_config=config,
            out_dir=out_dir,
            resume=checkpoint,
            init=init,
            vae_config=vae,
        )

    def start(self, request: TrainRequest) -> None:
        """Start :func:`~napari_hmgdm._train_job.train_job` for ``request`` in a worker thread."""
        self.save_settings()
        # Leave a core to the GUI thread so the viewer stays responsive while the CPU trains.
        torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
        self._token = CancelToken()
        worker = create_worker(
            train_job, request, self._token, _start_thread=False, _ignore_errors=True
        )  # shown by the errored handler, not re-raised
        self._live.update(token=self._token, worker=worker)
        worker.yielded.connect(self._on_yielded)
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self.loss_plot.clear(kl_in_total=request.pretrain_config.train.loss.kl > 0)
        self.loss_plot.setVisible(True)
        # Follow the first patch graph: its condition/target split at every step that drew it.
        self.mask_schedule.follow(request.pretrain_config.diffusion)
        self.progress.value = 0
        self.status.value = (f"Resuming {request.resume.name}; building patch graphs…" if request.resume
                             else "Building patch graphs…")  # fmt: skip
        self._resume_offered = False
        self._set_state(TrainState.RUNNING)
        worker.start()

    def cancel(self) -> None:
        """Ask the run to stop after the current step; it writes a checkpoint first."""
        if self._token is not None and self.state == TrainState.RUNNING:
            self._token.cancel()
            self._set_state(TrainState.CANCELLING)
            self.status.value = "Cancelling…"

    def _on_yielded(self, item) -> None:
        if isinstance(item, GraphDataset):
            self.mask_schedule.dataset = item
            nodes = sum(g.num_nodes for g in item)
            self.status.value = f"{len(item)} patch graphs, {nodes} nodes; starting…"
        elif isinstance(item, FollowedLabels):
            self.mask_schedule.followed_labels = item
        elif item == "vae":
            self.status.value = "Fitting the entity VAE on the patch windows…"
        elif isinstance(item, VAEFinished):
            self.status.value = (
                f"Entity VAE saved to {short_path(item.path)} after {item.step} steps; pre-training on its latents…"
            )
        elif isinstance(item, list):
            vae_steps = [e for e in item if isinstance(e, VAEStep)]
            if vae_steps:
                total = self.vae_settings.config.steps
                self.progress.max, self.progress.value = total, min(vae_steps[-1].step, total)
                self.status.value = f"entity VAE step {vae_steps[-1].step}/{total}  L1 {vae_steps[-1].l1:.4f}"
            for event in item:
                if isinstance(event, MaskDrawn):
                    self.mask_schedule.record(event)
            steps = [e for e in item if isinstance(e, StepDone)]
            if steps:
                last = steps[-1]
                self.progress.value = min(last.step, self.progress.max)
                self.status.value = (
                    f"step {last.step}/{self._total_steps}  loss {last.loss:.4f}  "
                    f"{last.graphs_per_second:.1f} graphs/s  ETA {human_eta(last.eta_seconds)}"
                )
                self.loss_plot.add(steps)
        elif isinstance(item, Started):
            self._total_steps = item.total_steps
            self.progress.max = max(1, item.total_steps)
            self.progress.value = item.start_step
            self.status.value = f"Training on {item.device}: {item.num_graphs} graphs, {item.total_steps} steps"
        elif isinstance(item, CheckpointWritten):
            self.checkpoint = item.path
        elif isinstance(item, Finished):
            self.checkpoint = item.checkpoint or self.checkpoint
            self._set_state(TrainState.DONE)
            self.status.value = f"Finished {item.step} steps; model saved to {short_path(self.checkpoint)}"
        elif isinstance(item, Cancelled):
            self.checkpoint = item.checkpoint or self.checkpoint
            self._resume_offered = self.checkpoint is not None
            self._set_state(TrainState.STOPPED)
            self.status.value = (f"Cancelled after {item.step} steps; saved {short_path(self.checkpoint)}. "
                                 "Resume continues it; New run starts again.")  # fmt: skip
        elif isinstance(item, Failed):
            self._set_state(TrainState.FAILED)
            self.status.error(f"Failed: {item.message}")

    def _on_error(self, err: Exception) -> None:
        self._set_state(TrainState.FAILED)
        self.status.error(f"Failed: {err}")
        show_error(f"Training failed: {err}")

    def _on_finished(self) -> None:
        self._worker = None
        self._token = None
        self._live.clear()
        if self.state in (TrainState.RUNNING, TrainState.CANCELLING):
            # The worker ended without a final event: cancelled before training started.
            self._set_state(TrainState.STOPPED)
            self.status.value = "Cancelled before training started."

    # --- checkpoints ----------------------------------------------------------------------------------------
    def save_checkpoint(self, path: str | Path) -> Path:
        """Copy the current checkpoint to ``path`` (atomic); it loads with ``weights_only=True``."""
        source = self.checkpoint or (
            latest_checkpoint(self.out_dir.value) if Path(self.out_dir.value).exists() else None
        )
        if source is None:
            raise InputError("No checkpoint yet: train first, or load one.")
        with atomic_path(path) as tmp:
            shutil.copyfile(source, tmp)
        return Path(path)

    def load_checkpoint(self, path: str | Path) -> None:
        """Load a checkpoint (weights only): its settings fill the forms, the next run resumes it."""
        checkpoint = load_checkpoint(path)
        self.model_settings.set_config(checkpoint.config.model)
        self.checkpoint = Path(path)
        self._resume_offered = True
        self._set_state(self.state)
        self.status.value = (f"Loaded {Path(path).name}: step {checkpoint.meta.get('step')}. Resume continues it; "
                             "New run starts from scratch.")  # fmt: skip

    def _ask_save(self) -> None:
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getSaveFileName(self.native, "Save checkpoint", "hmgdm-model.pt", "Checkpoint (*.pt)")
        if path:
            try:
                show_info(f"Saved {self.save_checkpoint(path)}")
            except (InputError, OSError) as err:
                show_error(str(err))

    def _ask_load(self) -> None:
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(self.native, "Load checkpoint", "", "Checkpoint (*.pt)")
        if path:
            try:
                self.load_checkpoint(path)
            except (InputError, OSError) as err:
                show_error(str(err))
