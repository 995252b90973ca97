"""sections/train.py: TrainConfig and MeshConfig check themselves; and sections/convert.py's
section_from_dict turns a ConfigDict or JSON mapping into a frozen section, naming what it does
not know."""

import dataclasses
import math
import re

import pytest

from sections.convert import section_from_dict
from sections.eval import EvalConfig, SpeedConfig
from sections.train import MeshConfig, TrainConfig, default_train_config


def test_the_defaults_are_the_dataclass_and_the_configdict_edits_them():
    assert section_from_dict(TrainConfig, default_train_config(), "train") == TrainConfig()
    edited = default_train_config()
    edited.num_steps = 7
    assert section_from_dict(TrainConfig, edited, "train").num_steps == 7


@pytest.mark.parametrize(
    "key, value, fragment",
    [
        ("objective", "masekd", "train.objective='masekd'"),
        ("batch_size", 0, "train.batch_size must be >= 1"),
        ("eval_every", -1, "train.eval_every must be >= 0"),
        ("eval_batches", 0, "set train.eval_every=0"),
        ("learning_rate", math.nan, "train.learning_rate must be > 0"),
        ("adam_b2", 1.0, "train.adam_b2 must be in [0, 1)"),
        ("ema_decay", 1.0, "train.ema_decay must be in [0, 1) (0: no EMA), got 1.0."),
        ("ema_decay", -0.5, "train.ema_decay must be in [0, 1) (0: no EMA), got -0.5."),
        ("ema_decay", math.nan, "train.ema_decay must be in [0, 1) (0: no EMA), got nan."),
        ("glancing_ratio", 1.5, "train.glancing_ratio must be in [0, 1]"),
    ],
)
def test_a_train_section_that_cannot_train_is_refused_naming_the_key(key, value, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)) as error:
        TrainConfig(**{key: value})
    assert "\n" not in str(error.value)  # One line.


def test_sections_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainConfig().num_steps = 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        MeshConfig().fsdp = 2


def test_section_from_dict_names_unknown_keys_and_restores_tuples_and_sections():
    with pytest.raises(ValueError, match=r"No such setting train\.num_stepz; train has \["):
        section_from_dict(TrainConfig, {"num_stepz": 3}, "train")
    built = section_from_dict(
        EvalConfig, {"decoders": ["ar_cache"], "speed": {"lengths": [16, 32]}}, "eval"
    )
    assert built.decoders == ("ar_cache",) and isinstance(built.speed, SpeedConfig)
    assert built.speed.lengths == (16, 32)
    with pytest.raises(ValueError, match=r"No such setting eval\.speed\.length;"):
        section_from_dict(EvalConfig, {"speed": {"length": [16]}}, "eval")
    with pytest.raises(ValueError, match="eval.decoders must be a tuple, got the string"):
        section_from_dict(EvalConfig, {"decoders": "ar_cache"}, "eval")
