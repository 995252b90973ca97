"""model/config.py: bad ModelConfig values and unknown keys give one-line errors."""

import dataclasses

import pytest

from model import ModelConfig


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(d_model=30, num_heads=4), "divisible"),
        (dict(attention_mask_kind="diagonal"), "attention_mask_kind"),
        (dict(num_layers=0), "num_layers"),
        (dict(dropout_rate=1.0), "dropout_rate"),
        (dict(dtype="int8"), "dtype"),
    ],
)
def test_bad_config_values_give_one_line_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(ModelConfig(), **overrides)


def test_unknown_config_key_is_named():
    with pytest.raises(ValueError, match="num_layer"):
        ModelConfig.from_dict({"num_layer": 2})
