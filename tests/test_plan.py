"""plan.py: a variant becomes a typed, frozen, checked run plan; plans survive their JSON; saved
configs, today's and those written before run plans existed, are read over today's defaults."""

import dataclasses
import json
import os

import pytest

from data import make_task
from experiments import tiny, two_alphabets
from plan import make_plan, make_plans, overridden_flags, variant_names
from sections import EvalConfig, load_plan
from training import checkpoints, run_folder

HERE = os.path.dirname(os.path.abspath(__file__))


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
    with pytest.raises(
        ValueError, match=r"attention_mask_kind to be one of \('full', 'prefix_full'\)"
    ):
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


def test_a_saved_config_takes_new_keys_at_their_defaults_and_names_dropped_ones():
    saved = json.loads(json.dumps(make_plan(tiny.get_config(), "causal").to_dict()))
    del saved["eval"]["speed"]
    saved["eval"]["old_key"] = 1
    saved["eval"]["speed_lengths"] = [1, 2]
    saved["eval"]["decoders"] = ["AR (cache)"]
    saved["eval"]["nar"]["gone"] = True
    saved["train"]["num_steps"] = 7
    saved["retired_section"] = {}
    loaded, dropped = load_plan(saved)
    assert loaded.eval.speed == EvalConfig().speed
    assert loaded.train.num_steps == 7
    assert sorted(dropped) == [
        "eval.nar.gone",
        "eval.old_key",
        "eval.speed_lengths",
        "retired_section",
    ]
    assert loaded.eval.decoders == ("AR (cache)",)  # JSON's list is a tuple again.


def test_make_plans_gives_every_variant_and_seed_in_order():
    config = tiny.get_config()
    config.seeds = (0, 1)
    plans = make_plans(config)
    names = variant_names(config)
    assert [(p.variant, p.seed) for p in plans] == [(n, s) for n in names for s in (0, 1)]
    assert [(p.variant, p.seed) for p in make_plans(config, "causal")] == [
        ("causal", 0),
        ("causal", 1),
    ]


def test_a_variant_may_train_its_own_seeds_and_a_command_one_seed():
    config = tiny.get_config()
    config.seeds = (0,)
    config.variants.causal.seeds = (0, 1, 2)
    plans = make_plans(config)
    assert [(p.variant, p.seed) for p in plans if p.variant == "causal"] == [
        ("causal", 0), ("causal", 1), ("causal", 2)
    ]  # fmt: skip
    assert {p.seed for p in plans if p.variant != "causal"} == {0}
    assert plans[1].seeds == (0, 1, 2)
    assert [(p.variant, p.seed) for p in make_plans(config, "causal", seed=2)] == [("causal", 2)]
    # Every variant's seed 1: only causal trains one.
    assert [p.variant for p in make_plans(config, seed=1)] == ["causal"]
    with pytest.raises(ValueError, match=r"--seed=5: no planned variant trains it .*'causal'"):
        make_plans(config, "causal", seed=5)
    with pytest.raises(ValueError, match=r"^Unknown variant 'casual'; 'tiny' defines"):
        make_plans(config, "casual")  # train.py --variant=casual: one line, no KeyError.


def test_a_config_json_written_before_run_plans_loads_as_a_plan():
    # runs/demo/causal_copy/seed_0/config.json as the code before plan.py wrote it (decoders
    # named by label; the same sections, as a ConfigDict's JSON).
    with open(os.path.join(HERE, "config_before_run_plans.json"), encoding="utf-8") as f:
        saved = json.load(f)
    run_plan, dropped = load_plan(saved)
    assert dropped == [] and (run_plan.variant, run_plan.seed) == ("causal_copy", 0)
    assert run_plan.eval.speed.decoders == ("AR (cache)", "AR (no cache, honest)")
    assert run_plan.model.attention_mask_kind == "causal" and run_plan.train.num_steps == 1200
    # Saved again, it is the same JSON plus the keys added since, at their defaults: a resume of
    # such a run sees no difference (training/checkpoints.py fills them the same way).
    again = json.loads(json.dumps(run_plan.to_dict()))
    assert _flat(again) | _flat(saved) == _flat(again)
    added = sorted(set(_flat(again)) - set(_flat(saved)))
    assert "model.block_size" in added and "train.label_smoothing" in added
    # A run saved before the EMA existed kept none, and is read as one without (its params).
    assert "train.ema_decay" in added and run_plan.train.ema_decay == 0.0
    assert not checkpoints.config_differences(
        again, json.loads(json.dumps(load_plan(again)[0].to_dict()))
    )


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = json.dumps(value)
    return out


def test_plans_are_frozen_and_check_every_section():
    run_plan = make_plan(tiny.get_config(), "causal")
    with pytest.raises(AttributeError):
        run_plan.train.num_steps = 3
    config = tiny.get_config()
    config.seeds = ()
    with pytest.raises(ValueError, match="config.seeds is empty"):
        make_plan(config, "causal")
    config = tiny.get_config()
    config.eval.speed.prompt_len = 1000
    with pytest.raises(ValueError, match="eval.speed lengths"):
        make_plan(config, "causal")
    config = tiny.get_config()
    config.model.length_head = True
    with pytest.raises(ValueError, match="model.length_head=True is trained only by"):
        make_plan(config, "causal")


def test_the_architecture_must_take_the_mask_and_the_objective():
    config = tiny.get_config()
    config.model.architecture = "encoder_decoder"
    config.variants.causal.model.attention_mask_kind = "prefix"
    with pytest.raises(ValueError, match="attention_mask_kind must be one of"):
        make_plan(config, "causal")
    config.variants.causal.model.attention_mask_kind = "causal"
    config.train.objective = "sequential"
    with pytest.raises(ValueError, match="an encoder_decoder must encode the whole source"):
        make_plan(config, "causal")
    config.model.architecture = "bogus"
    with pytest.raises(ValueError, match="Unknown model architecture 'bogus'"):
        make_plan(config, "causal")


def test_eval_overrides_give_a_new_checked_plan():
    run_plan = make_plan(tiny.get_config(), "causal")
    changed = run_plan.with_eval({"speed.repeats": 1, "decoders": ("ar_cache",)})
    assert changed.eval.speed.repeats == 1 and changed.eval.decoders == ("ar_cache",)
    assert run_plan.eval.speed.repeats != 1  # The plan itself is unchanged.
    with pytest.raises(ValueError, match="eval.num_examples must be >= 1"):
        run_plan.with_eval({"num_examples": 0})


@pytest.mark.parametrize("key", ["decoders", "speed.decoders"])
def test_a_decoder_id_the_table_lacks_is_refused_when_the_plan_is_made(key):
    config = tiny.get_config()
    name = key.rpartition(".")[2]
    target = config.eval.speed if key.startswith("speed") else config.eval
    setattr(target, name, ("ar_cahce",))
    with pytest.raises(ValueError, match=r"Unknown decoders \['ar_cahce'\]"):
        make_plan(config, "causal")


def test_a_run_saved_before_a_key_was_added_resumes_and_a_changed_key_is_named(tmp_path):
    run_plan = make_plan(tiny.get_config(), "causal")
    saved = json.loads(json.dumps(run_plan.to_dict()))
    del saved["model"]["block_size"], saved["train"]["label_smoothing"]  # Added later.
    run_dir = str(tmp_path)
    with open(run_folder.config_path(run_dir), "w", encoding="utf-8") as f:
        json.dump(saved, f)
    open(run_folder.metrics_path(run_dir), "w").close()  # Trained once: not a fresh folder.
    assert checkpoints.plan_start(run_dir, run_plan, overwrite=False) == "resume"
    changed = make_plan(tiny.get_config(), "causal", seed=0)
    changed = dataclasses.replace(changed, train=dataclasses.replace(changed.train, num_steps=7))
    with pytest.raises(ValueError, match=r"train.num_steps: \d+ -> 7"):
        checkpoints.plan_start(run_dir, changed, overwrite=False)


def test_a_setting_naming_a_variant_the_experiment_lacks_gets_did_you_mean():
    config = tiny.get_config()
    config.variants.full.eval = {"diffusion": {"ar_variant": "casual"}}
    with pytest.raises(ValueError, match=r"eval.diffusion.ar_variant='casual' is not a variant"):
        make_plan(config, "full")
    with pytest.raises(ValueError, match=r"did you mean 'causal'\?"):
        make_plan(config, "full")


def test_a_judge_of_generative_nll_that_is_no_next_token_model_is_refused_by_the_plan():
    """It was refused only at eval time, after every variant had trained."""
    config = tiny.get_config()
    config.variants.cmlm = {
        "model": {"attention_mask_kind": "prefix_full"},
        "train": {"objective": "masked"},
    }
    for judge, kind in (("full", "next_token model .* mask 'full'"), ("cmlm", "masked model")):
        config.eval.diffusion.ar_variant = judge
        for variant in ("causal", judge):  # Every run's plan, the judge's own too.
            with pytest.raises(ValueError, match=rf"^eval.diffusion.ar_variant='{judge}' .*{kind}"):
                make_plan(config, variant)
    config.eval.diffusion.ar_variant = "causal"
    assert make_plan(config, "full").eval.diffusion.ar_variant == "causal"
    config.variants.full.eval = {"diffusion": {"ar_variant": "full"}}  # A variant's own judge.
    with pytest.raises(ValueError, match=r"'full' cannot judge samples"):
        make_plan(config, "full")
    assert make_plan(config, "causal").eval.diffusion.ar_variant == "causal"


def test_a_block_size_under_a_mask_without_blocks_is_refused():
    """It was once ignored, yet recorded in config.json."""
    config = tiny.get_config()
    config.model.block_size = 4
    with pytest.raises(ValueError, match=r"block_size=4 means something only under .*'causal'"):
        make_plan(config, "causal")


def test_a_variants_own_setting_that_beats_a_command_line_flag_is_named():
    """--config.train.num_steps=... lost to a variant's own setting without a word."""
    config = two_alphabets.get_config()
    flags = {"model.max_len": 44, "train.num_steps": 5}
    assert overridden_flags(config, "ctc", flags) == [("model.max_len", 40)]
    assert overridden_flags(config, "ar", flags) == [] == overridden_flags(config, "", flags)
