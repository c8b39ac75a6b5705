"""A small live plot of the training loss and its parts (matplotlib in Qt)."""

from __future__ import annotations

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure

from hmgdm_core.train import StepDone

__all__ = ["LossPlot"]

_PARTS = (
    ("loss", "total", "#1f77b4"),
    ("node", "node", "#2ca02c"),
    ("edge", "edge", "#d62728"),
    ("kl", "KL", "#9467bd"),
)


class LossPlot(FigureCanvasQTAgg):
    """Loss parts against the step, on a log scale; redrawn when new steps arrive."""

    def __init__(self) -> None:
        figure = Figure(figsize=(3.2, 2.0), dpi=90, layout="constrained")
        super().__init__(figure)
        self.axes = figure.add_subplot()
        self.steps: list[int] = []
        self.values: dict[str, list[float]] = {attr: [] for attr, _, _ in _PARTS}
        self.lines = {
            attr: self.axes.plot([], [], label=label, color=color, lw=1.2)[0] for attr, label, color in _PARTS
        }
        self.axes.set_xlabel("step", fontsize=8)
        self.axes.set_yscale("log")
        self.axes.tick_params(labelsize=7)
        self.axes.legend(fontsize=7, loc="upper right")
        self.setMinimumHeight(160)

    def clear(self, kl_in_total: bool = True) -> None:
        """Forget all points; the KL line's label says whether the next run's total includes the KL term."""
        # The default recipe drops the KL term, yet its value stays worth watching (it grows freely then).
        self.lines["kl"].set_label("KL" if kl_in_total else "KL (not in total)")
        self.axes.legend(fontsize=7, loc="upper right")
        self.steps.clear()
        for values in self.values.values():
            values.clear()
        self._redraw()

    def add(self, events: list[StepDone]) -> None:
        """Append steps and redraw once."""
        for event in events:
            self.steps.append(event.step)
            for attr in self.values:
                self.values[attr].append(max(float(getattr(event, attr)), 1e-12))
        self._redraw()

    def _redraw(self) -> None:
        for attr, line in self.lines.items():
            line.set_data(self.steps, self.values[attr])
        if self.steps:
            self.axes.relim()
            self.axes.autoscale_view()
        self.draw_idle()
