"""The widgets' jobs, driven directly (no Qt): progress, tiled regions, abandoning a build."""

import math
import threading

import numpy as np
import pytest

from hmgdm_core.graph import GraphConfig, validate_graph
from hmgdm_core.io import Region
from napari_hmgdm._workers import GraphRequest, graph_job


def _drain(gen):
    updates = []
    try:
        while True:
            updates.append(next(gen))
    except StopIteration as stop:
        return updates, stop.value


@pytest.fixture
def request_for(sample_svs):
    def make(h, w, polygon=None):
        return GraphRequest(str(sample_svs), 0.499, Region(1400, 700, h, w, 0.499, 0.5), polygon,
                            GraphConfig(kind="nuclei"))
    return make


def test_one_piece_region_reports_three_stages(request_for):
    request = request_for(256, 256)
    updates, result = _drain(graph_job(request))
    assert [u[0] for u in updates] == ["reading", "entities", "graph"]
    validate_graph(result.graph)
    assert result.labels is not None and result.labels.shape == request.region.shape


def test_large_region_is_built_tile_by_tile_with_progress(request_for):
    request = request_for(1024, 1024)
    updates, result = _drain(graph_job(request, tile_size=256))
    tiles = [u for u in updates if u[0] == "tiles"]
    rows, cols = request.region.shape  # 1022² read px: 4 x 4 tiles of 256, two passes each
    assert tiles[-1][1] == tiles[-1][2] == 2 * math.ceil(rows / 256) * math.ceil(cols / 256)
    assert result.labels is None
    validate_graph(result.graph)
    assert result.graph.num_nodes > 50


def test_polygon_applies_to_tiled_regions(request_for):
    triangle = np.array([[1400, 700], [2424, 700], [2424, 1724]], dtype=float)
    _, result = _drain(graph_job(request_for(1024, 1024, triangle), tile_size=256))
    rel = result.graph.pos.numpy() - [1400, 700]
    assert (rel[:, 1] <= rel[:, 0] + 1).all()


def test_closing_the_job_stops_the_tile_thread(request_for):
    gen = graph_job(request_for(1024, 1024), tile_size=256)
    next(gen)
    gen.close()  # what the worker's quit() does at a yield
    assert not any(t.name == "hmgdm-tiles" for t in threading.enumerate())
