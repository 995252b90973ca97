"""Shared fixtures: the tiny model config is the real default config, shrunk."""

import dataclasses

import pytest

from model import ModelConfig


def make_tiny_config(**overrides) -> ModelConfig:
    """ModelConfig() shrunk to test size; keyword overrides win."""
    tiny = dict(vocab_size=23, d_model=32, num_heads=4, num_layers=2, d_ff=64, max_len=48)
    return dataclasses.replace(ModelConfig(), **{**tiny, **overrides})


@pytest.fixture
def tiny_config() -> ModelConfig:
    return make_tiny_config()
