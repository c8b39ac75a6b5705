"""The training widget's mask-schedule view: which entities a run hid and gave at each recorded step."""

from __future__ import annotations

from typing import TYPE_CHECKING

from magicgui.widgets import Container, Label, PushButton
from napari.layers import Layer

from hmgdm_core.diffusion import DiffusionConfig
from hmgdm_core.graph import GraphDataset
from hmgdm_core.overlays import MaskSchedule, MaskScheduleRecorder
from hmgdm_core.train import MaskDrawn
from napari_hmgdm._layers import (
    ROLE_COLOURS,
    ROLE_NAMES,
    mask_schedule_labels_layer_data,
    mask_schedule_layer_data,
)
from napari_hmgdm._train_job import FollowedLabels
from napari_hmgdm._widgets._legend import Legend

if TYPE_CHECKING:
    import napari

__all__ = ["MaskScheduleView"]

ROLE_MEANING = {"condition": "given", "target": "hidden, rebuilt", "hidden": "left out"}


class MaskScheduleView(Container):
    """*Show mask schedule*: the followed patch graph's roles per recorded step, one frame per step on the slider.

    A run calls :meth:`follow` when it starts, then hands over what its job yields (:meth:`record`, the
    :attr:`dataset`, the :attr:`followed_labels`); the button draws the layers.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        Where the layers go; its dims slider picks the step.
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self._viewer = viewer
        self.button = PushButton(text="Show mask schedule")
        self.button.tooltip = "Which nodes were hidden (target) or given (condition) at each recorded step."
        self.info = Label(value="")
        self.legend = Legend("mask schedule")
        super().__init__(widgets=[self.button, self.info, self.legend], labels=False)
        self.margins = (0, 0, 0, 0)
        self.recorder: MaskScheduleRecorder | None = None
        # The run's patch graphs: the recorder follows dataset[recorder.dataset_index].
        self.dataset: GraphDataset | None = None
        # The followed graph's entity label image, when the job sent it.
        self.followed_labels: FollowedLabels | None = None
        # What the layers show, once drawn.
        self.schedule: MaskSchedule | None = None
        self.button.changed.connect(self.show)
        viewer.dims.events.current_step.connect(self._on_dims_step)

    def follow(self, diffusion: DiffusionConfig) -> None:
        """Start recording a new run: the first patch graph, at every step that draws it."""
        self.recorder = MaskScheduleRecorder(0, diffusion)
        self.dataset = self.followed_labels = None

    def record(self, event: MaskDrawn) -> None:
        """Keep the followed graph's split of one step."""
        if self.recorder is not None:
            self.recorder.record(event)

    def show(self) -> None:
        """Draw the followed graph's condition/target roles per recorded step (dims slider = step)."""
        if self.recorder is None or self.dataset is None or not len(self.recorder.schedule().steps):
            self.info.value = "Train first: the mask schedule is recorded while training."
            return
        self.schedule = self.recorder.schedule()
        graph = self.dataset[self.recorder.dataset_index]
        layers = mask_schedule_layer_data(graph, self.schedule)
        if self.followed_labels is not None and self.followed_labels.dataset_index == self.recorder.dataset_index:
            # Below the points and edges: the entities' areas coloured by the same roles.
            layers.insert(0, mask_schedule_labels_layer_data(graph, self.schedule, self.followed_labels.labels))
        for data, kwargs, kind in layers:
            if kwargs["name"] in self._viewer.layers:
                self._viewer.layers.remove(kwargs["name"])
            self._viewer.add_layer(Layer.create(data, kwargs, kind))
        self.legend.set_entries(
            [(f"{role} ({ROLE_MEANING[role]})", ROLE_COLOURS[role]) for role in ROLE_NAMES],
            title="mask schedule (slider = training step)",
        )
        self._on_dims_step()

    def _on_dims_step(self, event=None) -> None:
        if self.schedule is None or self._viewer.dims.ndim < 3:
            return
        schedule = self.schedule
        index = min(int(self._viewer.dims.current_step[0]), len(schedule.steps) - 1)
        self.info.value = (
            f"step {schedule.steps[index]}: t = {schedule.t[index]}, noise σ = {schedule.noise_std[index]:.3f}, "
            f"{int((schedule.node_role[index] == 1).sum())} target / {schedule.node_role.shape[1]} nodes"
        )
