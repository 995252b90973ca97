"""sections/eval.py: EvalConfig checks its ranges when built, and overrides give a new one;
its decoder ids are checked against the decoders table by the plan (tests/test_plan.py) and by
eval.py (tests/test_runner.py)."""

import pytest

from sections.eval import EvalConfig, default_eval_config


def test_the_configdict_defaults_are_the_dataclass():
    assert EvalConfig.from_dict(default_eval_config()) == EvalConfig()


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"num_examples": 0}, "eval.num_examples must be >= 1"),
        ({"num_samples": -1}, "eval.num_samples must be >= 0"),
        ({"dependency_max_len": 1}, "eval.dependency_max_len must be >= 2"),
        ({"speed.repeats": 0}, "eval.speed.repeats must be >= 1"),
        ({"speed.train_seq_len": 3}, "eval.speed.train_seq_len must be >= 4"),
        ({"speed.prompt_len": 64}, r"eval.speed lengths \[64\] leave no new tokens"),
    ],
)
def test_an_eval_section_that_cannot_evaluate_is_refused_naming_the_key(overrides, fragment):
    with pytest.raises(ValueError, match=fragment):
        EvalConfig().with_overrides(overrides)


def test_overrides_reach_nested_sections_and_leave_the_original_alone():
    base = EvalConfig()
    changed = base.with_overrides({"speed.repeats": 1, "nar.ar_variant": "causal"})
    assert (changed.speed.repeats, changed.nar.ar_variant) == (1, "causal")
    assert (base.speed.repeats, base.nar.ar_variant) == (3, "")
    assert changed.with_overrides({}) == changed
