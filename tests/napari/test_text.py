"""Durations in the status lines read as people say them."""

import math
from pathlib import Path

import pytest

from napari_hmgdm._widgets._text import human_eta, short_path


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(634, "10 min 34 s"), (8.4, "8 s"), (0, "0 s"), (59.6, "1 min 0 s"), (7500, "2 h 05 min"), (3600, "1 h 00 min")],
)
def test_human_eta(seconds, text):
    assert human_eta(seconds) == text


@pytest.mark.parametrize("seconds", [None, math.inf, math.nan, -1.0])
def test_unknown_eta(seconds):
    assert human_eta(seconds) == "unknown time"


def test_short_path_keeps_the_run_folder_and_file():
    assert short_path(Path("/tmp/x/runs/run-20261204-0228/checkpoint-00000026.pt")) == (
        "run-20261204-0228/checkpoint-00000026.pt"
    )
    assert short_path(None) == "nothing"
