"""Regenerate the screenshots in docs/images from the bundled sample slide.

    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/make_screenshots.py

Each screenshot is what a person sees after the steps the tutorial describes: open the sample,
draw a rectangle, build the nuclei graph; then train on the region (progress and loss); then
show the mask schedule of the first patch graph; reconstruct the region's noised entities
(reconstruction beside the noised view); embed the region's patches with the trained model and
colour them by k-means cluster.
"""

import tempfile
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "images"
BOX = (1400, 700, 768, 768)  # level-0 (y, x, height, width) over the epidermis
MPP = 0.499


def wait(app, done, timeout=600.0):
    end = time.monotonic() + timeout
    while not done():
        if time.monotonic() > end:
            raise TimeoutError("the widget did not finish in time")
        app.processEvents()
        time.sleep(0.02)


def main() -> None:
    from qtpy.QtWidgets import QApplication

    import napari
    from hmgdm_core.sample import sample_slide_path
    from napari_hmgdm._widgets.graph_widget import GraphWidget
    from napari_hmgdm._widgets.patch_widget import PatchWidget
    from napari_hmgdm._widgets.reconstruction_widget import ReconstructionWidget
    from napari_hmgdm._widgets.train_widget import TrainState, TrainWidget

    OUT.mkdir(exist_ok=True)
    app = QApplication.instance() or QApplication([])
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1600, 1000)
    (image,) = viewer.open(str(sample_slide_path()), plugin="napari-hmgdm")
    y, x, h, w = BOX
    corners = np.array([[y - 0.5, x - 0.5], [y + h - 0.5, x + w - 0.5]]) * MPP
    shapes = viewer.add_shapes([corners], shape_type="rectangle", name="region", edge_color="cyan",
                               face_color="transparent", edge_width=4, units=("µm", "µm"))

    docked = []

    def dock(widget, name: str) -> None:
        """Dock ``widget`` (tabbed after the first) and point it at the slide and the drawn region."""
        viewer.window.add_dock_widget(widget, name=name, tabify=bool(docked))
        docked.append(name)
        widget.picker.image.value = image
        widget.picker.shapes.value = shapes

    graph = GraphWidget(viewer)
    dock(graph, "Entity graph")
    graph.run_button.native.click()
    wait(app, lambda: not graph.running)
    viewer.layers["nuclei entities"].visible = False
    viewer.camera.center = ((y + h / 2) * MPP, (x + w / 2) * MPP)
    viewer.camera.zoom = 2.2
    app.processEvents()
    viewer.screenshot(str(OUT / "graph_overlay.png"), canvas_only=False, flash=False)

    with tempfile.TemporaryDirectory() as tmp:
        train = TrainWidget(viewer, settings_path=Path(tmp) / "settings.json")
        dock(train, "Train on selected region")
        train.out_dir.value = tmp
        train.train_settings.max_steps.value = "40"
        train.train_button.native.click()
        wait(app, lambda: train.state is not TrainState.RUNNING or train.progress.value >= 25)
        viewer.screenshot(str(OUT / "train_progress.png"), canvas_only=False, flash=False)
        train.cancel()
        wait(app, lambda: train._worker is None)
        for name in ("nuclei nodes", "nuclei edges"):
            viewer.layers[name].visible = False
        train.show_mask_schedule()
        viewer.dims.set_current_step(0, 3)
        app.processEvents()
        viewer.screenshot(str(OUT / "mask_schedule.png"), canvas_only=False, flash=False)
        for name in ("mask schedule nodes", "mask schedule edges"):
            viewer.layers[name].visible = False

        rebuild = ReconstructionWidget(viewer)
        dock(rebuild, "Diffusion reconstructions")
        rebuild.checkpoint.value = str(train.checkpoint)
        rebuild.t.value = 600
        rebuild.run_button.native.click()
        wait(app, lambda: rebuild.result is not None and rebuild._worker is None)
        viewer.layers["noised (t=600)"].visible = True
        noised = viewer.layers["noised (t=600)"]
        noised.translate = (noised.translate[0], noised.translate[1] + (w + 40) * MPP)  # beside the reconstruction
        app.processEvents()
        viewer.camera.center = ((y + h / 2) * MPP, (x + w + 20) * MPP)
        viewer.camera.zoom = 1.1
        viewer.screenshot(str(OUT / "reconstruction.png"), canvas_only=False, flash=False)
        for layer in list(viewer.layers):
            if layer.name.startswith(("original", "noised", "reconstructed", "reconstruction error")):
                layer.visible = False
        viewer.camera.center = ((y + h / 2) * MPP, (x + w / 2) * MPP)
        viewer.camera.zoom = 2.2

        patches = PatchWidget(viewer)
        dock(patches, "Patch predictions")
        patches.checkpoint.value = str(train.checkpoint)
        patches.patch_size.value = 64
        patches.embed_button.native.click()
        wait(app, lambda: patches.result is not None and patches._worker is None)
        patches.clusters.value = 4
        patches.cluster_button.native.click()
        app.processEvents()
        viewer.screenshot(str(OUT / "patch_clusters.png"), canvas_only=False, flash=False)
    viewer.close()
    print("wrote", *sorted(p.name for p in OUT.glob("*.png")))


if __name__ == "__main__":
    main()
