"""Regenerate the screenshots in docs/images from the bundled sample slide.

    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/make_screenshots.py

Each screenshot is what a person sees after the steps the tutorial describes: open the sample with
its drawn region, open the widgets from the Plugins menu (they pick the region up), build the nuclei
graph (nodes coloured by a measurement, with its colour bar); then train on the region (progress and
loss); then show the mask schedule of the first patch graph (entities, nodes and edges coloured by role,
with a legend); reconstruct the region's noised entities with the bundled model, before any
training, and with the trained one (reconstruction beside the noised view, then
the error map with its colour bar); embed the region's patches with the trained model and colour them by
k-means cluster (with a legend); mark a few dark (cell-dense) and pale patches, train the classifier on
the marks (class map with a legend, probability heatmap with a colour bar) and fine-tune the attention
classifier, showing its attention per entity.
"""

import tempfile
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "images"
MPP = 0.499
GLASS = 210  # mean RGB above which a patch is mostly bare glass, not pale tissue


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
    from hmgdm_core.io import open_slide
    from hmgdm_core.sample import sample_slide_path
    from napari_hmgdm._sample_data import SAMPLE_BOX
    from napari_hmgdm._widgets.train_widget import LATENT, SCRATCH, TrainState

    OUT.mkdir(exist_ok=True)
    app = QApplication.instance() or QApplication([])
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1600, 1000)
    # File ▸ Open Sample ▸ H-MGDM ▸ CMU-1 small region with a region drawn: the slide and a rectangle.
    viewer.open_sample("napari-hmgdm", "cmu1_region")
    image, shapes = viewer.layers["CMU-1-Small-Region.svs"], viewer.layers["region"]
    y, x, h, w = SAMPLE_BOX

    docked = {}

    def dock(name: str):
        """Open a widget as Plugins ▸ H-MGDM ▸ ``name`` does (tabbed after the first); it finds the region itself."""
        dock_widget, widget = viewer.window.add_plugin_dock_widget("napari-hmgdm", name, tabify=bool(docked))
        docked[name] = dock_widget
        assert widget.picker.image.value is image and widget.picker.shapes.value is shapes
        return widget

    graph = dock("Entity graph")
    graph.run_button.native.click()
    wait(app, lambda: not graph.running)
    viewer.layers["nuclei entities"].visible = False
    viewer.scene.camera.center = ((y + h / 2) * MPP, (x + w / 2) * MPP)
    viewer.scene.camera.zoom = 2.2
    app.processEvents()
    viewer.screenshot(str(OUT / "graph_overlay.png"), canvas_only=False, flash=False)

    with tempfile.TemporaryDirectory() as tmp:
        train = dock("Train on selected region")
        train._settings_path = Path(tmp) / "settings.json"  # leave the user's remembered settings alone
        train.out_dir.value = tmp
        train.train_settings.max_steps.value = "40"
        train.train_button.native.click()
        wait(app, lambda: train.state is not TrainState.RUNNING or train.progress.value >= 25)
        viewer.screenshot(str(OUT / "train_progress.png"), canvas_only=False, flash=False)
        train.cancel()
        wait(app, lambda: train._worker is None)
        for name in ("nuclei nodes", "nuclei edges"):
            viewer.layers[name].visible = False
        train.mask_schedule.button.native.click()
        viewer.dims.set_current_step(0, 3)
        # On the followed patch (the first one), which fills most of the canvas.
        followed = train.dataset[0].region
        viewer.scene.camera.center = (
            (followed["y"] + followed["height"] / 2) * MPP,
            (followed["x"] + followed["width"] / 2) * MPP,
        )
        viewer.scene.camera.zoom = 3.0
        app.processEvents()
        viewer.screenshot(str(OUT / "mask_schedule.png"), canvas_only=False, flash=False)
        for name in ("mask schedule entities", "mask schedule nodes", "mask schedule edges"):
            viewer.layers[name].visible = False

        def show_side_by_side() -> None:
            noised = viewer.layers["noised (t=600)"]
            noised.visible = True
            noised.translate = (noised.translate[0], noised.translate[1] + (w + 40) * MPP)  # beside the reconstruction
            app.processEvents()
            viewer.scene.camera.center = ((y + h / 2) * MPP, (x + w + 20) * MPP)
            viewer.scene.camera.zoom = 1.1

        # The widget's default checkpoint is the bundled pre-trained model: reconstructions before any training.
        rebuild = dock("Diffusion reconstructions")
        rebuild.t.value = 600
        rebuild.run_button.native.click()
        wait(app, lambda: rebuild.result is not None and rebuild._worker is None)
        show_side_by_side()
        viewer.screenshot(str(OUT / "reconstruction_bundled.png"), canvas_only=False, flash=False)

        rebuild.checkpoint.value = str(train.checkpoint)
        rebuild.result = None
        rebuild.run_button.native.click()
        wait(app, lambda: rebuild.result is not None and rebuild._worker is None)
        show_side_by_side()
        viewer.screenshot(str(OUT / "reconstruction.png"), canvas_only=False, flash=False)
        # The error map over the original region, with its colour bar.
        noised = viewer.layers["noised (t=600)"]
        noised.visible = False
        viewer.layers["reconstructed (t=600)"].visible = False
        viewer.layers["original"].visible = True
        viewer.layers["reconstruction error"].visible = True
        viewer.scene.camera.center = ((y + h / 2) * MPP, (x + w / 2) * MPP)
        viewer.scene.camera.zoom = 2.2
        app.processEvents()
        viewer.screenshot(str(OUT / "reconstruction_error.png"), canvas_only=False, flash=False)
        for layer in list(viewer.layers):
            if layer.name.startswith(("original", "noised", "reconstructed", "reconstruction error")):
                layer.visible = False
        viewer.scene.camera.center = ((y + h / 2) * MPP, (x + w / 2) * MPP)
        viewer.scene.camera.zoom = 2.2

        patches = dock("Patch predictions")
        patches.checkpoint.value = str(train.checkpoint)
        patches.patch_size.value = 64
        patches.embed_button.native.click()
        wait(app, lambda: patches.result is not None and patches._worker is None)
        patches.clusters.value = 4
        patches.cluster_button.native.click()
        app.processEvents()
        viewer.screenshot(str(OUT / "patch_clusters.png"), canvas_only=False, flash=False)

        # Three of the darkest (cell-dense) and three of the palest tissue patches, marked as two classes.
        viewer.layers["patch clusters"].visible = False
        patches.class_names.value = "cell-dense, pale"
        grid = patches.result.grid
        with open_slide(sample_slide_path()) as slide:
            cut = grid.cut(slide.read(grid.region))
        brightness = np.array([p.mean() for p in cut])
        order = [i for i in np.argsort(brightness) if brightness[i] < GLASS]
        marks = viewer.layers["patch marks"]
        for name, chosen in (("cell-dense", order[:3]), ("pale", order[-3:])):
            patches.mark_class.value = name
            for index in chosen:
                by0, bx0, by1, bx1 = grid.level0_boxes[index]
                marks.add(np.array([(by0 + by1) / 2, (bx0 + bx1) / 2]) * MPP)
        patches.heatmap_class.value = "cell-dense"
        patches.probe_button.native.click()
        app.processEvents()
        viewer.screenshot(str(OUT / "probability_heatmap.png"), canvas_only=False, flash=False)
        for name in ("patch classes", "p(cell-dense)"):
            viewer.layers[name].visible = False
        patches.epochs.value = 10
        patches.finetune_button.native.click()
        wait(app, lambda: patches.attention is not None and patches._finetune_worker is None)
        viewer.layers["patch marks"].visible = True
        viewer.layers.move(viewer.layers.index("patch marks"), len(viewer.layers))
        app.processEvents()

        viewer.screenshot(str(OUT / "attention_heatmap.png"), canvas_only=False, flash=False)

        # Entity-VAE mode: a tiny VAE briefly fitted on the region's windows (CPU-sized, not the paper's
        # stage 1), a short pre-training on its latents, and the decoded windows pasted at the entities.
        for layer in viewer.layers:
            layer.visible = layer is image or layer is shapes
        train.checkpoint = None  # a new run on latents, not a resume of the raw-window model
        train.start_from.value = SCRATCH  # the bundled model reads raw windows
        train.features.value = LATENT
        for name, value in {"base_channels": 8, "latent_channels": 4, "batch_size": 32, "steps": 60}.items():
            getattr(train.vae_settings, name).value = value
        train.train_settings.max_steps.value = "20"
        train.train_button.native.click()
        wait(app, lambda: train.state is not TrainState.RUNNING and train._worker is None)
        rebuild.checkpoint.value = str(train.checkpoint)  # vae.pt lies beside it
        rebuild.result = None
        rebuild.run_button.native.click()
        wait(app, lambda: rebuild.result is not None and rebuild._worker is None)
        show_side_by_side()
        docked["Diffusion reconstructions"].raise_()
        app.processEvents()
        viewer.screenshot(str(OUT / "reconstruction_vae.png"), canvas_only=False, flash=False)
    viewer.close()
    print("wrote", *sorted(p.name for p in OUT.glob("*.png")))


if __name__ == "__main__":
    main()
