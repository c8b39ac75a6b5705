import json

import imageio.v3 as iio
import numpy as np
import pandas as pd
import pytest

from hmgdm_core.downstream.classify import ClassifyConfig, classify_embeddings
from hmgdm_core.errors import DownstreamError


def _blobs(seed: int = 0, n: int = 240, n_groups: int = 24, separation: float = 2.0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    groups = rng.integers(0, n_groups, n)
    x = rng.normal(size=(n, 6))
    x[np.arange(n), labels] += separation
    return x, labels, groups


def _colour_histograms(kather_dir, index: pd.DataFrame) -> np.ndarray:
    """8 bins per RGB channel plus channel means and stds: a weak but real tile descriptor."""
    features = []
    for path in index["path"]:
        rgb = iio.imread(kather_dir / path).reshape(-1, 3)
        hist = [np.histogram(rgb[:, c], bins=8, range=(0, 256))[0] / len(rgb) for c in range(3)]
        features.append(np.concatenate([*hist, rgb.mean(0) / 255, rgb.std(0) / 255]))
    return np.array(features)


@pytest.mark.parametrize("probe", ["linear", "knn"])
def test_separable_embeddings_are_classified_well_and_shuffled_ones_at_chance(probe: str) -> None:
    x, labels, groups = _blobs()
    config = ClassifyConfig(probe=probe, n_neighbors=10)
    report = classify_embeddings(x, labels, groups, config)
    assert report.summary["accuracy"].mean > 0.8
    assert report.summary["macro_auc"].mean > 0.9
    shuffled = classify_embeddings(x, np.random.default_rng(1).permutation(labels), groups, config)
    assert shuffled.summary["accuracy"].mean < 0.5


def test_report_is_json_and_markdown_and_counts_every_test_sample() -> None:
    x, labels, groups = _blobs()
    names = np.array(["stroma", "tumour", "immune"])[labels]
    report = classify_embeddings(x, names, groups)
    assert report.class_names == ["immune", "stroma", "tumour"]
    assert sum(sum(counts) for counts in report.fold_class_counts) == len(x)
    assert np.array_equal(np.sum(report.fold_class_counts, axis=0), np.unique(names, return_counts=True)[1])
    restored = json.loads(report.to_json())
    assert restored["summary"]["accuracy"]["mean"] == pytest.approx(report.summary["accuracy"].mean)
    assert restored["config"]["probe"] == "linear"
    table = report.to_markdown()
    assert table.count("\n| ") >= 4 + 5 + 3
    for name in report.class_names:
        assert f"| {name} |" in table


def test_bad_inputs_are_clear_errors() -> None:
    x, labels, groups = _blobs()
    x_nan = x.copy()
    x_nan[7, 2] = np.nan
    with pytest.raises(DownstreamError, match=r"NaN .* \(first: \[7\]\)"):
        classify_embeddings(x_nan, labels, groups)
    with pytest.raises(DownstreamError, match="one entry per sample"):
        classify_embeddings(x, labels[:-1], groups)
    with pytest.raises(DownstreamError, match="single class"):
        classify_embeddings(x, np.zeros(len(x)), groups)
    with pytest.raises(DownstreamError, match="fewer than n_neighbors"):
        classify_embeddings(x[:40], labels[:40], groups[:40], ClassifyConfig(probe="knn", n_neighbors=50))
    with pytest.raises(DownstreamError, match="probe must be"):
        ClassifyConfig(probe="svm")


def test_colour_histograms_of_kather_tiles_beat_chance_with_slide_grouped_cv(kather_dir) -> None:
    index = pd.read_csv(kather_dir / "index.csv")
    # 08_EMPTY lives on two slides, too few for 5 slide-grouped folds; 40 tiles per class keep it fast.
    tissue = index[index["class_folder"] != "08_EMPTY"]
    sample = tissue.groupby("class_folder", group_keys=False).sample(n=40, random_state=0)
    features = _colour_histograms(kather_dir, sample)
    report = classify_embeddings(features, sample["class_folder"].to_numpy(), sample["slide"].to_numpy())
    chance = 1 / 7
    assert report.summary["accuracy"].mean > 3 * chance
    assert report.summary["macro_f1"].mean > 2.5 * chance
    assert report.summary["macro_auc"].mean > 0.8
    # Adipose (mostly white) is the easiest class for colour alone.
    assert report.pooled["per_class"]["07_ADIPOSE"]["f1-score"] > 0.7
