import numpy as np
import pandas as pd
import pytest

from hmgdm_core.downstream.splits import grouped_folds, grouped_holdout
from hmgdm_core.errors import DownstreamError, InputError


def _labels_groups(seed: int = 0, n: int = 240, n_groups: int = 30) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, n_groups, n)
    # Labels correlate with the group, as tissue classes do with slides.
    labels = (groups % 3 + (rng.random(n) < 0.3)) % 3
    return labels, groups


@pytest.mark.parametrize("n_splits", [3, 5])
def test_every_sample_is_tested_once_and_no_group_crosses(n_splits: int) -> None:
    labels, groups = _labels_groups()
    folds = grouped_folds(labels, groups, n_splits, seed=0)
    assert len(folds) == n_splits
    tested = np.concatenate([test for _, test in folds])
    assert np.array_equal(np.sort(tested), np.arange(len(labels)))
    for train, test in folds:
        assert len(np.intersect1d(train, test)) == 0
        assert len(train) + len(test) == len(labels)
        assert not set(groups[train]) & set(groups[test])


def test_folds_depend_on_seed_only() -> None:
    labels, groups = _labels_groups()
    a = grouped_folds(labels, groups, 5, seed=3)
    b = grouped_folds(labels, groups, 5, seed=3)
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(a, b, strict=True))


def test_holdout_is_grouped_and_about_the_asked_fraction() -> None:
    labels, groups = _labels_groups()
    fit, val = grouped_holdout(labels, groups, 5, seed=1)
    assert not set(groups[fit]) & set(groups[val])
    assert len(fit) + len(val) == len(labels)
    assert 0.1 < len(val) / len(labels) < 0.3


def test_class_with_too_few_groups_is_a_clear_error() -> None:
    labels, groups = _labels_groups()
    labels = np.where(groups == 0, "rare", labels.astype(str))  # "rare" lives in one group only
    with pytest.raises(DownstreamError, match=r"rare \(1 group\)") as info:
        grouped_folds(labels, groups, 5, seed=0)
    assert isinstance(info.value, InputError)


def test_too_few_groups_and_bad_lengths_are_errors() -> None:
    labels, groups = _labels_groups(n_groups=3)
    with pytest.raises(DownstreamError, match="Only 3 distinct groups"):
        grouped_folds(labels, groups, 5, seed=0)
    with pytest.raises(DownstreamError, match="one per sample"):
        grouped_folds(labels, groups[:-1], 2, seed=0)
    with pytest.raises(DownstreamError, match="at least 2 folds"):
        grouped_folds(labels, groups, 1, seed=0)


def test_kather_slides_name_the_class_that_lives_on_two_slides(kather_dir) -> None:
    # Real data: 08_EMPTY tiles come from two slides only, so 5-fold slide-grouped CV cannot test it.
    index = pd.read_csv(kather_dir / "index.csv")
    with pytest.raises(DownstreamError, match=r"08_EMPTY \(2 groups\)"):
        grouped_folds(index["class_folder"].to_numpy(), index["slide"].to_numpy(), 5, seed=0)
    tissue = index[index["class_folder"] != "08_EMPTY"]
    folds = grouped_folds(tissue["class_folder"].to_numpy(), tissue["slide"].to_numpy(), 5, seed=0)
    slides = tissue["slide"].to_numpy()
    for train, test in folds:
        assert not set(slides[train]) & set(slides[test])
