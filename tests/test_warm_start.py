"""train.init_from (training/warm_start.py): a fresh run starts from another variant's trained
params, same seed, with a fresh optimizer; a source not trained, of other shapes, or not a
variant of the experiment is refused in one line."""

import dataclasses

import ml_collections
import numpy as np
import pytest
from flax import nnx

from evaluation import checkpoint_history
from experiments import tiny
from model import make_decoder
from plan import experiment_json, make_plan, make_plans
from training import checkpoints, warm_start
from training.loop import train_experiment


def _config(**train) -> ml_collections.ConfigDict:
    config = tiny.get_config()
    config.model.update(num_layers=1, d_model=16, num_heads=2, d_ff=32)
    config.train.update(num_steps=2, log_every=1, eval_every=0, checkpoint_every=2, **train)
    config.variants = ml_collections.ConfigDict()
    config.variants.base = {"model": {"attention_mask_kind": "causal"}}
    # The same parameters under another mask: what BD3-LM does from MDLM's.
    config.variants.tuned = {
        "model": {"attention_mask_kind": "prefix"},
        "train": {"init_from": "base", "learning_rate": 1e-9, "weight_decay": 0.0},
    }
    return config


def _train(config, workdir, variant):
    plans = make_plans(config, variant)
    return train_experiment(plans, str(workdir), experiment_json(config))[0]


@pytest.mark.slow
def test_a_warm_started_run_begins_from_the_source_params(tmp_path):
    config = _config()
    with pytest.raises(ValueError, match=r"^train.init_from='base': .*/seed_0 has no checkpoint"):
        _train(config, tmp_path, "tuned")
    base = _train(config, tmp_path, "base")
    # At a learning rate of 1e-9 the tuned run's params stay the source's, not a fresh init's.
    tuned = _train(config, tmp_path, "tuned")
    fresh = nnx.split(make_decoder(make_plan(config, "tuned").model, 0))[1]
    flat = [nnx.to_flat_state(s) for s in (base.params, tuned.params, fresh)]
    for (_, a), (_, b), (_, c) in zip(*flat, strict=True):
        np.testing.assert_allclose(np.asarray(b.value), np.asarray(a.value), atol=1e-6)
        assert a.value.size < 2 or not np.allclose(np.asarray(c.value), np.asarray(a.value))
    model, *_ = checkpoints.load_params(str(tmp_path / "tuned" / "seed_0"))
    assert model.cfg.attention_mask_kind == "prefix"
    # Its training cost starts from the source's: the curves read the compute both took.
    (source_s,), (source_flops,) = checkpoint_history.training_cost(base.run_dir, [2])
    (own_s,), _ = checkpoint_history._own_cost(tuned.run_dir, [2])
    (total_s,), (total_flops,) = checkpoint_history.training_cost(tuned.run_dir, [2])
    assert total_s == pytest.approx(source_s + own_s) and total_flops > source_flops > 0


@pytest.mark.slow
def test_a_block_model_starts_from_mdlms_params_and_leaves_its_length_head_behind(tmp_path):
    """As the diffusion study's bd3_block4_warm from mdlm: the source has a length head (its
    params once came back re-nested, refused as of other shapes), the block model has none."""
    config = _config()
    config.model.num_layers = 2
    config.variants.base = {
        "model": {"attention_mask_kind": "full", "length_head": True},
        "train": {"objective": "diffusion"},
    }
    config.variants.tuned.model = {"attention_mask_kind": "block_causal", "block_size": 2}
    config.variants.tuned.train.objective = "diffusion"
    base = _train(config, tmp_path, "base")
    tuned = _train(config, tmp_path, "tuned")
    source = dict(nnx.to_flat_state(base.params))
    flat = nnx.to_flat_state(tuned.params)
    assert {path[0] for path, _ in flat} == {p[0] for p in source} - {"length_head"}
    for path, variable in flat:
        np.testing.assert_allclose(np.asarray(variable.value), np.asarray(source[path].value),
                                   atol=1e-6)  # fmt: skip


@pytest.mark.slow
def test_a_source_of_other_shapes_is_refused(tmp_path):
    _train(_config(), tmp_path, "base")
    wider = dataclasses.replace(make_plan(_config(), "tuned").model, d_model=32, d_ff=64)
    fresh = nnx.split(make_decoder(wider, 0))[1]
    with pytest.raises(ValueError, match=r"do not have this model's shapes"):
        warm_start.source_params("base", str(tmp_path / "tuned" / "seed_0"), fresh)


def test_init_from_must_name_another_variant():
    config = _config()
    config.variants.tuned.train.init_from = "nope"
    with pytest.raises(ValueError, match=r"^train.init_from='nope' must name another variant"):
        make_plan(config, "tuned")
    config.variants.tuned.train.init_from = "tuned"
    with pytest.raises(ValueError, match="must name another variant"):
        make_plan(config, "tuned")
    config = _config()
    config.variants.tuned.seeds = (0, 1)
    with pytest.raises(ValueError, match=r"^train.init_from='base' trains no seed \[1\]"):
        make_plan(config, "tuned")
