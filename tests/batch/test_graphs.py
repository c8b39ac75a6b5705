"""Batch graph building: one dataset per item, resumable, failures recorded, local and distributed Dask."""

import csv
import json

import pytest

from hmgdm_core.batch import SlideGraphConfig, SlideItem, TaskRunner, build_graphs, item_graphs, slide_items
from hmgdm_core.batch import graphs as batch_graphs
from hmgdm_core.cli import main
from hmgdm_core.errors import InputError
from hmgdm_core.graph import GraphDataset
from hmgdm_core.io import Region


def test_item_graphs_cover_tissue_patches_in_level0(regions_csv):
    item = slide_items([regions_csv])[0]
    calls = []
    dataset = item_graphs(item, SlideGraphConfig(), progress=lambda *a: calls.append(a))
    assert 1 <= len(dataset) <= 4
    y, x, h, w = item.box
    for graph in dataset:
        assert graph.num_nodes >= 2 and graph.group == "case0" and int(graph.y) == 0
        region = Region.from_dict(graph.region)
        assert region.shape == (128, 128)
        assert y <= region.y and region.y + region.height <= y + h
        assert x <= region.x and region.x + region.width <= x + w
        assert (graph.pos[:, 0] >= region.y).all() and (graph.pos[:, 1] < region.x + region.width).all()
    assert {c[0] for c in calls} == {"patches"} and calls[-1][1] == calls[-1][2]


def test_rerun_skips_finished_items_and_redoes_deleted_ones(regions_csv, tmp_path, monkeypatch):
    items = slide_items([regions_csv])
    out = tmp_path / "graphs"
    first = build_graphs(items, out)
    assert [r.status for r in first] == ["built", "built"]
    paths = [out / f"{i.name}.pt" for i in items]
    assert [len(GraphDataset.load(p)) for p in paths] == [r.count for r in first]
    built = []
    original = batch_graphs.item_graphs

    def counted(item, *args, **kwargs):
        built.append(item)
        return original(item, *args, **kwargs)

    monkeypatch.setattr(batch_graphs, "item_graphs", counted)
    second = build_graphs(items, out)
    assert [r.status for r in second] == ["skipped", "skipped"] and not built
    assert [r.count for r in second] == [r.count for r in first]
    paths[1].unlink()
    paths[0].write_bytes(b"truncated")  # an unreadable output is not trusted
    third = build_graphs(items, out)
    assert [r.status for r in third] == ["built", "built"] and built == items
    fourth = build_graphs(items[:1], out, overwrite=True)
    assert fourth[0].status == "built" and len(built) == 3
    rows = list(csv.DictReader((out / "manifest.csv").open()))
    assert [r["status"] for r in rows] == ["built"] and rows[0]["y"] == "1280" and rows[0]["group"] == "case0"


def test_bad_slides_are_recorded_and_the_others_built(regions_csv, blank_slide, corrupt_slide, tmp_path, capsys):
    out = tmp_path / "graphs"
    status = main(["graph", str(corrupt_slide), str(regions_csv), str(blank_slide), "--out", str(out)])
    assert status == 1
    printed = capsys.readouterr().out
    assert "FAILED corrupt" in printed and "FAILED blank" in printed and "2 built" in printed
    manifest = {r["name"]: r for r in json.loads((out / "manifest.json").read_text())}
    assert manifest["corrupt"]["status"] == "failed" and "SlideError" in manifest["corrupt"]["error"]
    assert manifest["blank"]["status"] == "failed" and "NoTissueError" in manifest["blank"]["error"]
    assert sorted(p.name for p in out.glob("*.pt")) == ["cmu_1280_768_600_600.pt", "cmu_1792_1024_600_600.pt"]
    # The re-run skips the finished regions and tries the failed slides again.
    assert main(["graph", str(corrupt_slide), str(regions_csv), str(blank_slide), "--out", str(out)]) == 1
    assert "2 already done, 2 failed" in capsys.readouterr().out


def test_distributed_scheduler_gives_the_local_graphs(regions_csv, tmp_path):
    from distributed import LocalCluster

    items = slide_items([regions_csv])[:1]
    local = item_graphs(items[0])
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        argv = ["graph", str(regions_csv), "--out", str(tmp_path / "d"), "--scheduler", cluster.scheduler_address]
        assert main(argv) == 0
        with TaskRunner(cluster.scheduler_address) as runner:
            remote = item_graphs(items[0], runner=runner)
    assert [g.num_nodes for g in remote] == [g.num_nodes for g in local]
    assert all((a.x == b.x).all() for a, b in zip(remote, local, strict=True))
    assert len(GraphDataset.load(tmp_path / "d" / f"{items[0].name}.pt")) == len(local)


def test_runner_and_config_refuse_bad_settings(sample_svs):
    with pytest.raises(InputError, match="scheduler"):
        TaskRunner("gpu")
    with pytest.raises(InputError, match="workers"):
        TaskRunner("threads", 0)
    with pytest.raises(InputError, match="min_tissue"):
        SlideGraphConfig(min_tissue=2.0)
    with pytest.raises(InputError, match="smaller than one"):
        item_graphs(SlideItem(sample_svs, (0, 0, 100, 100)))
