"""training/checkpoints.py: starting a run folder (refused, resumed, overwritten), and restoring
past a damaged checkpoint."""

import json
import os

import jax
import ml_collections
import numpy as np
import pytest

from experiments import tiny
from plan import make_plan
from training import checkpoints, run_folder
from training.step import Hyperparams, init_train_state


def _config():
    return make_plan(tiny.get_config(), "causal")


def _save_steps(run_dir, config, steps, keep=3):
    """Real Orbax checkpoints of a fresh state at `steps`, with the params scaled by the step."""
    hparams = Hyperparams.from_config(config.train)
    _, params, opt_state = init_train_state(config.model, hparams, 0)
    manager = checkpoints.make_manager(run_dir, keep)
    for step in steps:
        scaled = jax.tree.map(lambda x, s=step: x * s, params)
        checkpoints.save(manager, step, scaled, opt_state)
    manager.wait_until_finished()
    manager.close()
    return params


def test_a_trained_run_with_another_config_is_refused_unless_overwritten(tmp_path):
    run_dir = str(tmp_path / "run")
    config = _config()
    assert checkpoints.plan_start(run_dir, config, overwrite=False) == "new"
    checkpoints.prepare_run_dir(run_dir, config, "new")
    _save_steps(run_dir, config, [5])
    changed = ml_collections.ConfigDict(config.to_dict())
    changed.model.d_model = 64
    changed.train.log_every = 7  # Bookkeeping: allowed on resume, not reported.
    changed.seeds = (0, 1, 2)  # So are the experiment's other seeds: a run is its own seed.
    with pytest.raises(ValueError, match=r"model\.d_model: 32 -> 64") as error:
        checkpoints.plan_start(run_dir, changed, overwrite=False)
    assert "log_every" not in str(error.value) and "seeds" not in str(error.value)
    assert checkpoints.plan_start(run_dir, config, overwrite=False) == "resume"
    # --overwrite wipes only what differs: the same config still resumes.
    assert checkpoints.plan_start(run_dir, config, overwrite=True) == "resume"
    assert checkpoints.plan_start(run_dir, changed, overwrite=True) == "overwrite"
    checkpoints.prepare_run_dir(run_dir, changed, "overwrite")
    assert run_folder.checkpoint_steps(run_dir) == []
    assert checkpoints.load_config(run_dir)[0].model.d_model == 64


def test_a_start_that_failed_before_its_first_checkpoint_blocks_nothing(tmp_path):
    run_dir = str(tmp_path / "run")
    config = _config()
    checkpoints.prepare_run_dir(run_dir, config, "new")  # Then the start failed: no checkpoint.
    changed = ml_collections.ConfigDict(config.to_dict())
    changed.model.d_model = 64
    assert checkpoints.plan_start(run_dir, changed, overwrite=False) == "new"


def test_restore_falls_back_past_a_damaged_checkpoint_with_a_warning(tmp_path, capsys):
    run_dir = str(tmp_path / "run")
    config = _config()
    checkpoints.prepare_run_dir(run_dir, config, "new")
    params = _save_steps(run_dir, config, [10, 20])
    # Truncate every file of step 20's params, as a full disk or a crash mid-write would.
    damaged = os.path.join(run_folder.checkpoint_dir(run_dir), "20", "params")
    for folder, _, files in os.walk(damaged):
        for name in files:
            with open(os.path.join(folder, name), "r+b") as f:
                f.truncate(max(os.path.getsize(f.name) // 3, 0))
    model, _, _, step = checkpoints.load_params(run_dir)
    assert step == 10
    assert "checkpoint step 20" in capsys.readouterr().err
    expected = jax.tree.leaves(jax.tree.map(lambda x: x * 10, params))
    for leaf, want in zip(jax.tree.leaves(model), expected, strict=True):
        np.testing.assert_array_equal(np.asarray(leaf), np.asarray(want))


def test_a_trained_run_whose_checkpoints_were_deleted_still_refuses_another_config(tmp_path):
    run_dir = str(tmp_path / "run")
    config = _config()
    checkpoints.prepare_run_dir(run_dir, config, "new")
    (tmp_path / "run" / "metrics.jsonl").write_text('{"step": 10, "split": "train"}\n')
    changed = ml_collections.ConfigDict(config.to_dict())
    changed.model.d_model = 64
    with pytest.raises(ValueError, match=r"model\.d_model: 32 -> 64"):
        checkpoints.plan_start(run_dir, changed, overwrite=False)
    assert checkpoints.plan_start(run_dir, changed, overwrite=True) == "overwrite"
    assert checkpoints.plan_start(run_dir, config, overwrite=False) == "resume"


def test_a_damaged_config_json_is_named_and_overwrite_replaces_it(tmp_path):
    run_dir = str(tmp_path / "run")
    config = _config()
    checkpoints.prepare_run_dir(run_dir, config, "new")
    _save_steps(run_dir, config, [5])
    (tmp_path / "run" / "config.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="config.json is damaged .*--overwrite"):
        checkpoints.plan_start(run_dir, config, overwrite=False)
    assert checkpoints.plan_start(run_dir, config, overwrite=True) == "overwrite"


def test_a_larger_num_steps_extends_a_trained_run_and_the_run_records_it(tmp_path, capsys):
    """Continuing a finished run was refused as "a different config", and the only fix offered
    (--overwrite) wiped it."""
    run_dir = str(tmp_path / "run")
    config = _config()
    checkpoints.prepare_run_dir(run_dir, config, "new")
    _save_steps(run_dir, config, [5])
    longer = ml_collections.ConfigDict(config.to_dict())
    longer.train.num_steps = config.train.num_steps + 10
    assert checkpoints.plan_start(run_dir, longer, overwrite=False) == "extend"
    assert "cosine schedule now decays to the new end" in capsys.readouterr().err
    checkpoints.prepare_run_dir(run_dir, longer, "extend")
    with open(run_folder.extensions_path(run_dir)) as f:
        (record,) = [json.loads(line) for line in f]
    assert (record["from_num_steps"], record["to_num_steps"], record["at_step"]) == (
        config.train.num_steps, config.train.num_steps + 10, 5,
    )  # fmt: skip
    assert checkpoints.plan_start(run_dir, longer, overwrite=False) == "resume"
    assert run_folder.checkpoint_steps(run_dir) == [5]  # Nothing was wiped.
    shorter = ml_collections.ConfigDict(config.to_dict())
    shorter.train.num_steps = 3  # Fewer steps than the run has: a different run.
    with pytest.raises(ValueError, match=r"only a larger train.num_steps continues a run"):
        checkpoints.plan_start(run_dir, shorter, overwrite=False)


def test_a_saved_key_this_version_lacks_is_named_and_ignored(tmp_path, capsys):
    """It was refused as "a different config", with --overwrite as the only way on."""
    run_dir = str(tmp_path / "run")
    config = _config()
    checkpoints.prepare_run_dir(run_dir, config, "new")
    _save_steps(run_dir, config, [5])
    path = run_folder.config_path(run_dir)
    with open(path) as f:
        saved = json.load(f)
    saved["train"]["retired_setting"] = 1
    with open(path, "w") as f:
        json.dump(saved, f)
    assert checkpoints.plan_start(run_dir, config, overwrite=False) == "resume"
    assert "ignored: ['train.retired_setting']" in capsys.readouterr().err
