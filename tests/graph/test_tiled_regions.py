import numpy as np
import pytest
import torch

from hmgdm_core.graph import GraphConfig, RegionSource, build_graph, graph_from_image, tiled_graph, validate_graph
from hmgdm_core.io import Region, open_slide

KEYS = ("x", "edge_index", "edge_pair", "edge_attr", "pos", "entity_id", "node_meas", "edge_meas")


@pytest.fixture(scope="module")
def region_image(he_tile):
    return np.ascontiguousarray(he_tile[:600, :700])


@pytest.mark.parametrize("kind", ["tissue", "nuclei"])
def test_a_region_within_one_tile_gives_the_one_shot_graph(region_image, kind):
    config = GraphConfig(kind=kind)
    region = Region(0, 0, *region_image.shape[:2], 0.25)
    one_shot = graph_from_image(region_image, 0.25, config)
    tiled = tiled_graph(RegionSource(region, image=region_image), config, tile_size=1024, scheduler="sync")
    for key in KEYS:
        assert torch.equal(one_shot[key], tiled[key]), key


@pytest.mark.parametrize(("fixed_od", "agreement"), [(0.3, 0.93), (None, 0.7)])
def test_tiled_nuclei_are_kept_once_and_match_one_shot(region_image, fixed_od, agreement):
    from scipy.spatial import cKDTree

    from hmgdm_core.entities import NucleiConfig

    config = GraphConfig(kind="nuclei", nuclei=NucleiConfig(fixed_od=fixed_od))
    region = Region(0, 0, *region_image.shape[:2], 0.25)
    one_shot = graph_from_image(region_image, 0.25, config)
    tiled = tiled_graph(RegionSource(region, image=region_image), config, tile_size=256)
    validate_graph(tiled)
    # No nucleus twice: distinct nodes are never closer than a nucleus radius.
    assert len(cKDTree(tiled.pos.numpy()).query_pairs(2.0)) == 0
    # With one threshold for all tiles only clumps wider than the halo can differ (their watershed
    # sees other markers); Otsu per tile adapts the threshold to each tile, so fewer come out identical.
    dist, _ = cKDTree(tiled.pos.numpy()).query(one_shot.pos.numpy())
    assert (dist < 1.0).mean() > agreement


def test_tiled_superpixels_are_stitched_across_seams(region_image):
    config = GraphConfig(kind="tissue", restrict_to_tissue=False)
    region = Region(0, 0, *region_image.shape[:2], 0.25)
    tiled = tiled_graph(RegionSource(region, image=region_image), config, tile_size=256)
    validate_graph(tiled)
    tile_of = (tiled.entity_id >> 32)[tiled.edge_index]
    assert bool((tile_of[0] != tile_of[1]).any())  # edges across seams exist
    assert len(torch.unique(tiled.entity_id)) == tiled.num_nodes
    # Every superpixel is a node: the areas add up to the region.
    area = tiled.node_meas[:, tiled.node_meas_names.index("area_um2")].sum()
    assert float(area) == pytest.approx(600 * 700 * 0.25**2, rel=1e-4)


def test_build_graph_tiles_a_slide_region_and_reports_level0_positions(sample_svs):
    with open_slide(sample_svs) as slide:
        region = slide.region(1000, 800, 700, 600)
        one = build_graph(slide, region, GraphConfig(kind="nuclei"))
        tiled = build_graph(slide, region, GraphConfig(kind="nuclei"), tile_size=256)
    validate_graph(one)
    validate_graph(tiled)
    for graph in (one, tiled):
        assert graph.num_nodes > 50
        y, x = graph.pos[:, 0], graph.pos[:, 1]
        assert float(y.min()) >= 1000 and float(y.max()) < 1700 and float(x.min()) >= 800 and float(x.max()) < 1400
    assert abs(tiled.num_nodes - one.num_nodes) < 0.1 * one.num_nodes


def test_the_distributed_scheduler_gives_the_same_graph(region_image):
    from distributed import LocalCluster

    config = GraphConfig(kind="nuclei")
    source = RegionSource(Region(0, 0, *region_image.shape[:2], 0.25), image=region_image)
    local = tiled_graph(source, config, tile_size=384, scheduler="threads")
    # In-process workers keep the test fast; RegionSource pickling is tested separately.
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        remote = tiled_graph(source, config, tile_size=384, scheduler=cluster.scheduler_address)
    for key in KEYS:
        assert torch.equal(local[key], remote[key]), key


def test_region_sources_pickle_for_worker_processes(sample_svs):
    import pickle

    with open_slide(sample_svs) as slide:
        region = slide.region(0, 0, 300, 400)
        direct = slide.read(region)
    source = pickle.loads(pickle.dumps(RegionSource(region, slide_path=str(sample_svs))))
    assert np.array_equal(source.read(0, 0, 300, 400), direct)
    assert np.array_equal(source.read(100, 50, 200, 150), direct[100:200, 50:150])


@pytest.mark.parametrize("scheduler", ["threads", "distributed"])
def test_progress_counts_every_tile_task(region_image, scheduler):
    from distributed import LocalCluster

    config = GraphConfig(kind="nuclei")
    source = RegionSource(Region(0, 0, *region_image.shape[:2], 0.25), image=region_image)
    calls = []

    def progress(done, total):
        calls.append((done, total))

    if scheduler == "threads":
        tiled_graph(source, config, tile_size=256, progress=progress)
    else:
        with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
            tiled_graph(source, config, tile_size=256, scheduler=cluster.scheduler_address, progress=progress)
    tiles = 3 * 3  # 600 x 700 px in 256 px tiles
    assert all(total == 2 * tiles for _, total in calls)
    done = [d for d, _ in calls]
    assert done == sorted(done) and done[-1] == 2 * tiles and done[0] >= 1


def test_raising_in_progress_stops_the_build(region_image):
    source = RegionSource(Region(0, 0, *region_image.shape[:2], 0.25), image=region_image)
    seen = []

    def progress(done, total):
        seen.append(done)
        if done == 2:
            raise KeyboardInterrupt("user cancelled")

    with pytest.raises(KeyboardInterrupt, match="user cancelled"):
        tiled_graph(source, GraphConfig(kind="nuclei"), tile_size=256, scheduler="sync", progress=progress)
    assert seen == [1, 2]
