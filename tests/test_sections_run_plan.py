"""sections/run_plan.py and sections/convert.py's known_keys: a RunPlan survives config.json (a
JSON round trip of to_dict) unchanged, and a saved config read back over today's defaults fills
the keys added since and names the ones dropped."""

import dataclasses
import json

import pytest

from experiments import tiny
from plan import make_plan
from sections.convert import known_keys
from sections.eval import EvalConfig
from sections.run_plan import RunPlan, experiment_eval, load_plan, saved_section
from sections.train import TrainConfig


@pytest.fixture(scope="module")
def plan() -> RunPlan:
    return make_plan(tiny.get_config(), "causal")


def _saved(plan: RunPlan) -> dict:
    """What config.json holds: to_dict through JSON (tuples become lists)."""
    return json.loads(json.dumps(plan.to_dict()))


def _cmlm_config():
    """tiny's config as a CMLM with a length head (its full variant), and an open section set."""
    config = tiny.get_config()
    config.model.length_head = True
    config.train.objective = "masked"
    config.eval.speed.model = {"d_ff": 48}
    config.eval.decoders = ("mask_predict_k2",)
    return config


@pytest.mark.parametrize(
    ("config", "variant"),
    [(tiny.get_config(), "causal"), (tiny.get_config(), "full"), (_cmlm_config(), "full")],
)
def test_load_plan_round_trips_to_dict_through_json(config, variant):
    plan = make_plan(config, variant)
    loaded, dropped = load_plan(_saved(plan))
    assert loaded == plan and dropped == []
    assert isinstance(loaded.seeds, tuple) and isinstance(loaded.eval.decoders, tuple)


def test_keys_added_since_take_their_defaults_and_dropped_keys_are_named(plan):
    saved = _saved(plan)
    del saved["train"]["warmup_steps"]  # A key added since this run was saved.
    saved["train"]["warmup_fraction"] = 0.1  # A key today's code no longer has.
    saved["eval"]["speed"]["old_knob"] = 3
    saved["tokenizer"] = {"kind": "bytes"}  # A whole section that no longer exists.
    saved["variants"] = {"causal": {}}  # experiment.json's, not a run's: not a loss.
    loaded, dropped = load_plan(saved)
    default = TrainConfig().warmup_steps
    assert plan.train.warmup_steps != default
    assert loaded.train == dataclasses.replace(plan.train, warmup_steps=default)
    assert (loaded.model, loaded.data, loaded.mesh) == (plan.model, plan.data, plan.mesh)
    assert dropped == ["train.warmup_fraction", "eval.speed.old_knob", "tokenizer"]


def test_a_model_setting_added_since_reads_as_its_architectures_saved_before(plan):
    # An encoder-decoder saved before `decoder_positions` existed counted row positions, and is
    # read so; a decoder (whose `saved_before` is empty) takes today's default, as before.
    for architecture, expected in (("encoder_decoder", "row"), ("decoder", "target")):
        saved = _saved(plan)
        saved["model"]["architecture"] = architecture
        del saved["model"]["decoder_positions"]
        assert load_plan(saved)[0].model.decoder_positions == expected
        saved["model"]["decoder_positions"] = "target"  # Saved with the setting: as saved.
        assert load_plan(saved)[0].model.decoder_positions == "target"


def test_a_missing_section_or_run_key_takes_todays_default():
    loaded, dropped = load_plan({"name": "old", "seeds": [3, 4]})
    assert (loaded.name, loaded.variant, loaded.seed, loaded.seeds) == ("old", "", 3, (3, 4))
    assert loaded.train == TrainConfig() and loaded.eval == EvalConfig() and dropped == []


def test_experiment_eval_and_with_eval(plan):
    assert experiment_eval(None) == EvalConfig()
    assert experiment_eval({"eval": _saved(plan)["eval"]}) == plan.eval
    changed = plan.with_eval({"speed.repeats": 1, "num_examples": 8})
    assert (changed.eval.speed.repeats, changed.eval.num_examples) == (1, 8)
    assert changed.train == plan.train and changed.eval != plan.eval
    section, dropped = saved_section(EvalConfig, {"num_examples": 8, "nope": 1}, "eval")
    assert section.num_examples == 8 and dropped == ["eval.nope"]


def test_known_keys_splits_nested_sections_and_keeps_open_ones_whole():
    kept, dropped = known_keys(
        EvalConfig,
        {"num_examples": 4, "speed": {"repeats": 2, "gone": 1, "model": {"d_ff": 8}}, "x": 0},
        "eval",
    )
    assert kept == {"num_examples": 4, "speed": {"repeats": 2, "model": {"d_ff": 8}}}
    assert dropped == ["eval.speed.gone", "eval.x"]
