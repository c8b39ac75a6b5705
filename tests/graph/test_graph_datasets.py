import csv

import numpy as np
import torch
from torch_geometric.loader import DataLoader

from hmgdm_core.graph import GraphConfig, dataset_from_folder, dataset_from_region, graph_summary, validate_graph
from hmgdm_core.io import open_slide

KATHER_MPP = 0.495


def test_kather_folder_gives_labelled_grouped_graphs(kather_dir, tmp_path):
    with (kather_dir / "index.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    picked = [next(r for r in rows if r["class_index"] == str(c)) for c in range(1, 9)]
    (tmp_path / "index.csv").write_text(
        "path,class_index,slide\n"
        + "".join(f"{kather_dir / r['path']},{r['class_index']},{r['slide']}\n" for r in picked)
    )
    dataset = dataset_from_folder(tmp_path, KATHER_MPP, GraphConfig(kind="tissue"))
    assert len(dataset) == 8
    assert dataset.labels.tolist() == list(range(1, 9))
    assert dataset.groups == [r["slide"] for r in picked]
    for graph in dataset:
        validate_graph(graph)
    tumour = dataset[0]
    assert 15 <= tumour.num_nodes <= 80  # the paper's figure: tens of superpixels per patch
    batch = next(iter(DataLoader(dataset, batch_size=8)))
    assert batch.num_graphs == 8 and batch.x.shape[1] == 3072


def test_region_cut_into_patches(sample_svs):
    with open_slide(sample_svs) as slide:
        region = slide.region(1200, 1000, 600, 900)
        image = slide.read(region)
    dataset = dataset_from_region(image, region, 300, GraphConfig(kind="nuclei"), group="CMU-1")
    assert len(dataset) == 2 * 3
    first, last = dataset[0], dataset[5]
    validate_graph(first)
    assert first.region["y"] == 1200 and last.region["x"] == 1600
    assert bool((last.pos[:, 1] >= 1600).all()) and dataset.groups == ["CMU-1"] * 6
    assert "nuclei graph" in graph_summary(first)


def test_graph_summary_reports_counts():
    from hmgdm_core.graph import graph_from_image

    graph = graph_from_image(np.full((40, 40, 3), 150, np.uint8), 0.5, GraphConfig(restrict_to_tissue=False))
    text = graph_summary(graph)
    assert f"{graph.num_nodes} nodes" in text and "3072 features" in text
    assert torch.is_tensor(graph.x)
