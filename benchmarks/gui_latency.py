"""Qt event-loop latency while the "Train on selected region" widget trains on the CPU.

A QTimer asks to fire every 20 ms; each firing records how late it came. Rows:

* idle: the viewer with the slide, nothing running;
* worker (ours): the TrainWidget's run (thread_worker, torch threads capped, events batched);
* baseline, GUI thread: the same training driven on the GUI thread (what a widget without a
  worker does; cellpose's GUI trains this way).

Needs a display: ``xvfb-run -a python benchmarks/gui_latency.py [--seconds 30] [--quick]``.
Prints a table and one JSON line.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

PERIOD_MS = 20


def measure(app, seconds: float, during=None) -> np.ndarray:
    """Lateness (ms) of a 20 ms QTimer over ``seconds``, optionally while ``during()`` runs on the GUI thread."""
    from qtpy.QtCore import QTimer

    delays: list[float] = []
    last = [time.perf_counter()]

    def tick():
        now = time.perf_counter()
        delays.append((now - last[0]) * 1e3 - PERIOD_MS)
        last[0] = now

    timer = QTimer()
    timer.setInterval(PERIOD_MS)
    timer.timeout.connect(tick)
    timer.start()
    end = time.perf_counter() + seconds
    if during is not None:
        during(end)
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.001)
    timer.stop()
    return np.maximum(np.array(delays[1:]), 0.0)


def summary(delays: np.ndarray) -> dict:
    if delays.size == 0:
        return {"ticks": 0, "p50_ms": None, "p95_ms": None, "max_ms": None}
    return {"ticks": int(delays.size), "p50_ms": round(float(np.percentile(delays, 50)), 1),
            "p95_ms": round(float(np.percentile(delays, 95)), 1), "max_ms": round(float(delays.max()), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="measurement time per row")
    parser.add_argument("--quick", action="store_true", help="5 s per row and a small network (smoke run)")
    args = parser.parse_args()
    if args.quick:
        args.seconds = 5.0

    from qtpy.QtWidgets import QApplication

    import napari
    from hmgdm_core.graph import GraphConfig, dataset_from_region
    from hmgdm_core.io import Region, open_slide
    from hmgdm_core.model.config import ModelConfig
    from hmgdm_core.sample import sample_slide_path
    from hmgdm_core.train import CancelToken, PretrainConfig, TrainConfig, pretrain
    from napari_hmgdm._widgets.train_widget import TrainState, TrainWidget

    viewer = napari.Viewer(show=True)
    (image,) = viewer.open(str(sample_slide_path()), plugin="napari-hmgdm")
    y, x, h, w = 1400, 700, 1024, 1024
    viewer.add_shapes([np.array([[y, x], [y + h, x + w]]) * 0.499], shape_type="rectangle", units=("µm", "µm"))
    app = QApplication.instance()
    model = ModelConfig(embed_dim=64, hidden_dim=32, time_mlp_dim=64) if args.quick else ModelConfig()
    rows = {"idle": summary(measure(app, args.seconds))}

    with tempfile.TemporaryDirectory() as tmp:
        widget = TrainWidget(viewer, settings_path=Path(tmp) / "settings.json")
        viewer.window.add_dock_widget(widget)
        widget.picker.image.value = image
        widget.picker.shapes.value = viewer.layers["Shapes"]
        widget.picker.mpp.value = 1.0
        widget.patch_size.value = 128
        widget.out_dir.value = tmp
        for name in ("embed_dim", "hidden_dim", "time_mlp_dim"):
            getattr(widget.model_settings, name).value = getattr(model, name)
        widget.train_settings.max_steps.value = "100000"
        widget.train_settings.device.value = "cpu"
        widget.train_button.native.click()
        while widget.progress.value < 1 and widget.state is TrainState.RUNNING:  # graphs built, training going
            app.processEvents()
            time.sleep(0.01)
        rows["worker (ours)"] = summary(measure(app, args.seconds))
        steps_worker = widget.progress.value
        widget.cancel()
        while widget._worker is not None:
            app.processEvents()
            time.sleep(0.01)

        slide = open_slide(sample_slide_path())
        region = Region(y, x, h, w, 0.499, 1.0)
        dataset = dataset_from_region(slide.read(region), region, 128, GraphConfig())
        config = PretrainConfig(model=model, train=TrainConfig(batch_size=8, max_steps=100000, device="cpu"))
        events = pretrain(dataset, config, Path(tmp) / "gui-thread", cancel=(token := CancelToken()))

        def on_gui_thread(end):
            # One training step per event-loop turn, as a widget without a worker would run it.
            while time.perf_counter() < end:
                next(events)
                app.processEvents()
            token.cancel()

        rows["baseline: training on GUI thread"] = summary(measure(app, args.seconds, during=on_gui_thread))
        for _ in events:  # let the cancelled run finish its checkpoint
            pass
    viewer.close()

    print(f"Qt event-loop lateness of a {PERIOD_MS} ms timer, {args.seconds:.0f} s per row "
          f"({'small' if args.quick else 'paper-size'} network, batch 8, 128² px patches)")
    print(f"{'condition':<34} {'ticks':>6} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for name, r in rows.items():
        print(f"{name:<34} {r['ticks']:>6} {r['p50_ms']!s:>8} {r['p95_ms']!s:>8} {r['max_ms']!s:>8}")
    base = rows["baseline: training on GUI thread"]["p95_ms"]
    ours = rows["worker (ours)"]["p95_ms"]
    ratio = round(base / max(ours, 0.1), 1) if base and ours is not None else None
    print(json.dumps({"benchmark": "gui_latency", "seconds": args.seconds, "rows": rows, "worker_steps": steps_worker,
                      "p95_baseline_over_ours": ratio}))


if __name__ == "__main__":
    main()
