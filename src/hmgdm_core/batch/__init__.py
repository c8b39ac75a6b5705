"""Batch runs over many slides: slide lists, graphs with Dask, embeddings, and the whole pipeline in one call.

Sits on top of the library, beside :mod:`hmgdm_core.train` and :mod:`hmgdm_core.embed`: it reads
slides, builds patch graphs as Dask tasks, pre-trains and embeds, and writes one output per
slide with a manifest, so that an interrupted run resumes where it stopped. Progress is
reported through ``progress(stage, done, total)`` callbacks (no progress-bar library here).
"""

from hmgdm_core.batch.embed import dataset_files, embed_datasets, embedding_arrays, load_embedder
from hmgdm_core.batch.graphs import SlideGraphConfig, build_graphs, item_graphs
from hmgdm_core.batch.manifest import ItemResult, write_manifest
from hmgdm_core.batch.pipeline import PipelineConfig, PipelineResult, run_pipeline
from hmgdm_core.batch.sources import SLIDE_SUFFIXES, SlideItem, slide_items
from hmgdm_core.batch.tasks import TaskRunner

__all__ = [
    "SLIDE_SUFFIXES",
    "ItemResult",
    "PipelineConfig",
    "PipelineResult",
    "SlideGraphConfig",
    "SlideItem",
    "TaskRunner",
    "build_graphs",
    "dataset_files",
    "embed_datasets",
    "embedding_arrays",
    "item_graphs",
    "load_embedder",
    "run_pipeline",
    "slide_items",
    "write_manifest",
]
