import numpy as np
import pytest

from hmgdm_core.downstream.inputs import (
    ClassificationData,
    SurvivalData,
    check_survival,
    load_classification_npz,
    load_survival_npz,
    save_classification_npz,
    save_survival_npz,
)
from hmgdm_core.errors import DownstreamError


def _classification() -> ClassificationData:
    rng = np.random.default_rng(0)
    return ClassificationData(rng.normal(size=(12, 4)), np.array(list("abc") * 4), np.repeat(np.arange(6), 2))


def _survival() -> SurvivalData:
    rng = np.random.default_rng(0)
    bags = [rng.normal(size=(n, 3)) for n in (2, 5, 1, 4)]
    return SurvivalData(bags, np.array([3.0, 1.5, 2.0, 7.0]), np.array([True, False, True, True]), np.arange(4))


def test_classification_file_round_trips(tmp_path) -> None:
    data = _classification()
    save_classification_npz(tmp_path / "c.npz", data)
    loaded = load_classification_npz(tmp_path / "c.npz")
    assert np.array_equal(loaded.embeddings, data.embeddings)
    assert np.array_equal(loaded.labels, data.labels)
    assert np.array_equal(loaded.groups, data.groups)


def test_survival_file_round_trips_bags_in_order(tmp_path) -> None:
    data = _survival()
    save_survival_npz(tmp_path / "s.npz", data)
    loaded = load_survival_npz(tmp_path / "s.npz")
    assert [len(b) for b in loaded.bags] == [2, 5, 1, 4]
    assert all(np.array_equal(a, b) for a, b in zip(loaded.bags, data.bags, strict=True))
    assert loaded.events.dtype == bool
    assert np.array_equal(loaded.times, data.times)


def test_missing_file_key_and_pickled_objects_are_clear_errors(tmp_path) -> None:
    with pytest.raises(DownstreamError, match="No such file"):
        load_classification_npz(tmp_path / "absent.npz")
    np.savez(tmp_path / "nolabels.npz", embeddings=np.zeros((3, 2)), groups=np.arange(3))
    with pytest.raises(DownstreamError, match=r"lacks the key\(s\) \['labels'\]"):
        load_classification_npz(tmp_path / "nolabels.npz")
    np.savez(tmp_path / "objects.npz", embeddings=np.zeros((2, 2)), labels=np.array([{}, {}]), groups=np.arange(2))
    with pytest.raises(DownstreamError, match="not a readable .npz"):
        load_classification_npz(tmp_path / "objects.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(DownstreamError, match="not a readable .npz"):
        load_classification_npz(tmp_path / "text.npz")


def test_nan_and_length_mismatch_in_files_are_clear_errors(tmp_path) -> None:
    data = _classification()
    embeddings = data.embeddings.copy()
    embeddings[3] = np.inf
    np.savez(tmp_path / "nan.npz", embeddings=embeddings, labels=data.labels, groups=data.groups)
    with pytest.raises(DownstreamError, match="NaN or infinite"):
        load_classification_npz(tmp_path / "nan.npz")
    np.savez(tmp_path / "short.npz", embeddings=data.embeddings, labels=data.labels[:-2], groups=data.groups)
    with pytest.raises(DownstreamError, match=r"labels must have one entry per sample \(12\)"):
        load_classification_npz(tmp_path / "short.npz")


def test_survival_file_with_a_slide_without_patches_is_an_error(tmp_path) -> None:
    np.savez(
        tmp_path / "gap.npz",
        embeddings=np.zeros((3, 2)),
        bag=np.array([0, 0, 2]),
        times=np.ones(3),
        events=np.array([1, 1, 0]),
    )
    with pytest.raises(DownstreamError, match=r"Slides \[1\] have no patch rows"):
        load_survival_npz(tmp_path / "gap.npz")
    np.savez(
        tmp_path / "range.npz",
        embeddings=np.zeros((3, 2)),
        bag=np.array([0, 1, 5]),
        times=np.ones(2),
        events=np.array([1, 1]),
    )
    with pytest.raises(DownstreamError, match=r"integer slide indices in \[0, 2\)"):
        load_survival_npz(tmp_path / "range.npz")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"times": np.array([3.0, 0.0, 2.0, 7.0])}, "times must be positive"),
        ({"events": np.array([1, 2, 0, 1])}, "events must be 0/1"),
        ({"events": np.array([1, 0, 0, 0])}, "at least two"),
        ({"times": np.array([3.0, np.nan, 2.0, 7.0])}, "NaN"),
        ({"bags": [np.zeros((2, 3)), np.zeros((2, 4)), np.zeros((1, 3)), np.zeros((1, 3))]}, "same embedding size"),
        ({"bags": [np.zeros((2, 3)), np.zeros((0, 3)), np.zeros((1, 3)), np.zeros((1, 3))]}, "non-empty 2-D"),
    ],
)
def test_bad_survival_arrays_are_clear_errors(change: dict, message: str) -> None:
    data = _survival()
    arguments = {"bags": data.bags, "times": data.times, "events": data.events, **change}
    with pytest.raises(DownstreamError, match=message):
        check_survival(**arguments)
