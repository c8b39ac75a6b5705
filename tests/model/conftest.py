"""Fixtures of the model tests."""

import pytest
from model_graphs import TINY

from hmgdm_core.model import ModelConfig


@pytest.fixture
def tiny_config() -> ModelConfig:
    return TINY
