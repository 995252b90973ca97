"""experiments/: every experiment loads and plans each variant, variant overrides and checks,
a plan read back from its JSON is the same plan, and saved configs are read over today's
defaults."""

import glob
import importlib
import json
import os

import ml_collections
import pytest

from data import make_task
from experiments import tiny
from plan import base_config, load_plan, make_plan, variant_names, with_defaults

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENTS = sorted(
    os.path.splitext(os.path.basename(path))[0]
    for path in glob.glob(os.path.join(REPO, "experiments", "*.py"))
    if os.path.basename(path) not in ("base.py", "__init__.py")
)
TFDS_TASKS = ("tfds_text", "tfds_translation")  # Need prepared TFDS data: refused in tmp_path.


def test_variant_overriding_an_unknown_key_fails():
    config = tiny.get_config()
    config.variants.typo = {"model": {"num_layer": 3}}
    with pytest.raises(KeyError, match=r"variants\.typo\.model\.num_layer"):
        make_plan(config, "typo")
    with pytest.raises(ValueError, match="Unknown variant 'nope'"):
        make_plan(config, "nope")


def test_masked_objective_needs_targets_that_see_each_other():
    config = tiny.get_config()
    config.train.objective = "masked"
    with pytest.raises(ValueError, match=r"attention_mask_kind in \('full', 'prefix_full'\)"):
        make_plan(config, "causal")
    assert make_plan(config, "full").train.objective == "masked"


def test_plan_read_back_from_json_is_the_same_plan():
    config = tiny.get_config()
    assert variant_names(config) == ["causal", "full"]
    run_plan = make_plan(config, "full")
    task = make_task(run_plan.data)
    cfg = run_plan.model
    assert (cfg.vocab_size, cfg.max_len) == (task.vocab_size, task.seq_len)
    assert cfg.attention_mask_kind == "full" and run_plan.variant == "full"
    reloaded, dropped = load_plan(json.loads(json.dumps(run_plan.to_dict())))
    assert reloaded == run_plan and dropped == []


def _data_of(config: ml_collections.ConfigDict, variant: str) -> dict:
    """A variant's data section: the experiment's, with the variant's overrides."""
    overrides = config.variants[variant].to_dict() if variant else {}
    return {**config.data.to_dict(), **overrides.get("data", {})}


def _task_of(config: ml_collections.ConfigDict, variant: str) -> str:
    """The data task a variant trains on: its override, else the experiment's."""
    return _data_of(config, variant)["task"]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_loads_and_resolves_every_variant(name, tmp_path):
    module = importlib.import_module(f"experiments.{name}")
    assert module.__doc__ and f"python train.py --config=experiments/{name}.py" in module.__doc__
    config = module.get_config()
    config.data.data_dir = str(tmp_path)  # Empty, whatever this machine has prepared.
    for variant in variant_names(config):
        if _task_of(config, variant) in TFDS_TASKS:
            with pytest.raises(FileNotFoundError, match="data_dir"):
                make_plan(config, variant)
            continue
        distilled_dir = _data_of(config, variant)["distilled_dir"]
        if distilled_dir and not os.path.isdir(os.path.join(REPO, distilled_dir)):
            # distill.py makes it after the teacher trains; until then the variant refuses.
            with pytest.raises(ValueError, match="distill.py"):
                make_plan(config, variant)
            continue
        make_plan(config, variant)


def test_with_defaults_fills_new_keys_and_names_dropped_ones():
    saved = tiny.get_config().to_dict()
    del saved["eval"]["speed"]
    saved["eval"]["old_key"] = 1
    saved["eval"]["speed_lengths"] = [1, 2]
    saved["eval"]["decoders"] = ["AR (cache)"]
    saved["train"]["num_steps"] = 7
    config, dropped = with_defaults(saved)
    assert config.eval.speed.lengths == base_config().eval.speed.lengths
    assert config.train.num_steps == 7
    assert sorted(dropped) == ["eval.old_key", "eval.speed_lengths"]
    assert config.eval.decoders == ("AR (cache)",)  # JSON's list is a tuple again.
