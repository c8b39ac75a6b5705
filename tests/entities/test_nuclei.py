import numpy as np
import pytest

from hmgdm_core.entities import NucleiConfig, instance_scores, nuclei_entities, nuclei_from_labels
from hmgdm_core.errors import InputError


def test_nuclei_match_the_annotation_reasonably(he_image):
    rgb, truth, mpp = he_image
    crop = np.s_[0:500, 0:500]
    ents = nuclei_entities(np.ascontiguousarray(rgb[crop]), mpp)
    scores = instance_scores(truth[crop], ents.labels)
    # Classical (no-learning) pipelines reach AJI ≈ 0.3–0.5 on MoNuSeg; this one must too.
    assert scores["dice"] > 0.6 and scores["aji"] > 0.3
    assert 0.5 < scores["n_pred"] / scores["n_true"] < 1.5


def test_nuclei_sizes_respect_the_area_limits(he_image):
    rgb, _, mpp = he_image
    config = NucleiConfig()
    ents = nuclei_entities(np.ascontiguousarray(rgb[:400, :400]), mpp, config)
    assert ents.n > 20
    assert (ents.table["area_um2"] >= config.min_area_um2).all()
    assert (ents.table["area_um2"] <= config.max_area_um2).all()
    yx = np.rint(ents.centroids).astype(int)
    assert np.array_equal(ents.labels[yx[:, 0], yx[:, 1]], ents.table["id"])


def test_parameters_are_in_microns(he_image):
    rgb, _, mpp = he_image
    full = nuclei_entities(np.ascontiguousarray(rgb[:600, :600]), mpp).n
    half = nuclei_entities(np.ascontiguousarray(rgb[:600:2, :600:2]), 2 * mpp).n
    assert abs(half - full) < 0.3 * full


@pytest.mark.parametrize("value", [0, 255])
def test_blank_images_have_no_nuclei(value):
    ents = nuclei_entities(np.full((200, 200, 3), value, np.uint8), 0.25)
    assert ents.n == 0 and (ents.labels == 0).all()
    assert ents.table["centroid_y"].shape == (0,)


def test_external_instance_labels_are_renumbered(he_image):
    rgb, truth, mpp = he_image
    crop = np.ascontiguousarray(rgb[:200, :200])
    labels = truth[:200, :200].astype(np.int64) * 10  # gaps in the ids
    ents = nuclei_from_labels(labels, crop, mpp)
    assert ents.n == len(np.unique(labels)) - 1
    assert ents.labels.max() == ents.n
    with pytest.raises(InputError):
        nuclei_from_labels(labels[:100], crop, mpp)
    with pytest.raises(InputError):
        nuclei_from_labels(labels.astype(float), crop, mpp)


def test_instance_scores_limits():
    truth = np.zeros((20, 20), int)
    truth[2:8, 2:8] = 1
    truth[10:18, 10:18] = 2
    perfect = instance_scores(truth, truth * 7)
    assert perfect["dice"] == perfect["aji"] == perfect["pq"] == 1.0
    disjoint = np.zeros_like(truth)
    disjoint[0:2, 15:20] = 1
    worst = instance_scores(truth, disjoint)
    assert worst["dice"] == worst["aji"] == worst["pq"] == 0.0
    half = instance_scores(truth, np.where(truth == 1, 1, 0))
    assert half["dq"] == pytest.approx(1 / 1.5) and half["sq"] == 1.0
