"""training/ema.py: the EMA of the params (MDLM's rule, by hand), the train step with and without
it, and a run that keeps one: the held-out loss and evaluation read the EMA, and a resumed run
ends bitwise equal to the uninterrupted one, EMA included."""

import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from data import make_task
from evaluation import checkpoint_history
from experiments import tiny
from plan import experiment_json, make_plan, make_plans
from sections import TrainConfig
from training import checkpoints, ema, run_folder
from training.loop import train_experiment
from training.step import Hyperparams, eval_step, init_train_state, make_optimizer, train_step


def _equal(tree, other) -> bool:
    leaves, others = jax.tree.leaves(tree), jax.tree.leaves(other)
    assert len(leaves) == len(others) > 0
    pairs = zip(leaves, others, strict=True)
    return all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in pairs)


@pytest.mark.parametrize("decay", [0.9999, 0.25, 0.1])
def test_the_ema_is_mdlm_s_average_of_the_params_after_each_update(decay):
    """decay_n = min(decay, (1 + n) / (10 + n)): 0.9999 is capped at every step here, 0.25 from
    the third update on (4/13 > 0.25), 0.1 never (2/11 > 0.1)."""
    params = {"w": jnp.array([1.0, -2.0, 3.0]), "b": jnp.array(0.5)}
    tx = optax.chain(optax.sgd(0.5), ema.params_ema(decay))
    state = tx.init(params)
    expected = jax.tree.map(lambda x: np.asarray(x, np.float64), params)
    for n in range(1, 5):
        grads = {"w": jnp.array([n, -1.0, 0.5 * n]), "b": jnp.array(-n / 4)}
        updates, state = tx.update(grads, state, params)
        for key in grads:  # The updates pass through unchanged.
            np.testing.assert_array_equal(updates[key], -0.5 * grads[key])
        params = optax.apply_updates(params, updates)
        decay_n = min(decay, (1 + n) / (10 + n))
        expected = jax.tree.map(
            lambda e, p, d=decay_n: d * e + (1 - d) * np.asarray(p, np.float64), expected, params
        )
        for key in params:
            np.testing.assert_allclose(ema.ema_params(state)[key], expected[key], rtol=1e-6)
    assert int(state[-1].count) == 4


def _hand_ema(trajectory: list, decay: float):
    """MDLM's EMA of params p_0 (the start), p_1, ..., by hand in float64."""
    expected = jax.tree.map(lambda x: np.asarray(x, np.float64), trajectory[0])
    for n, params in enumerate(trajectory[1:], start=1):
        decay_n = min(decay, (1 + n) / (10 + n))
        expected = jax.tree.map(
            lambda e, p, d=decay_n: d * e + (1 - d) * np.asarray(p, np.float64), expected, params
        )
    return expected


def _check_close(got, want) -> None:
    for leaf, wanted in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(leaf, wanted, rtol=1e-5, atol=1e-7)


def test_the_optimizer_keeps_an_ema_only_when_asked_and_it_changes_no_update():
    """Decay 0 (the default) keeps no EMA: the optimizer state is today's, clipping's and
    AdamW's. With one, the params and that state are bitwise those of the optimizer without
    it, and the EMA is MDLM's average of the params after each update, from the start."""
    start = {"kernel": jnp.arange(6.0).reshape(2, 3) / 7, "bias": jnp.array([0.1, -0.2, 0.3])}
    runs = {}
    for decay in (0.0, 0.25):
        hparams = Hyperparams.from_config(TrainConfig(ema_decay=decay, warmup_steps=0))
        optimizer = make_optimizer(hparams)
        params, state = start, optimizer.init(start)
        trajectory = [params]
        for n in range(1, 4):
            grads = jax.tree.map(lambda x, n=n: jnp.cos(n * x), params)
            updates, state = optimizer.update(grads, state, params)
            params = optax.apply_updates(params, updates)
            trajectory.append(params)
        runs[decay] = hparams, trajectory, state
    plain_hparams, plain, plain_state = runs[0.0]
    assert not plain_hparams.ema and ema.ema_params(plain_state) is None and len(plain_state) == 2
    hparams, averaged, averaged_state = runs[0.25]
    assert hparams.ema and int(averaged_state[-1].count) == 3
    assert all(_equal(a, b) for a, b in zip(plain, averaged, strict=True))
    assert _equal(plain_state, averaged_state[:2])
    _check_close(ema.ema_params(averaged_state), _hand_ema(averaged, 0.25))


def _tiny_config(**train):
    config = tiny.get_config()
    config.model.update(num_layers=1, d_model=16, num_heads=2, d_ff=32)
    config.train.update(**train)
    return config


@pytest.mark.slow
def test_the_train_step_trains_the_same_params_with_the_ema_and_averages_them():
    """The same, through the jitted train step of a tiny decoder (its inputs donated). The two
    steps are two programs, which XLA may fuse apart (an FMA here, not there): the params are
    compared to rounding, not bitwise."""
    runs = {}
    for decay in (0.0, 0.25):
        plan = make_plan(_tiny_config(ema_decay=decay), "causal")
        hparams = Hyperparams.from_config(plan.train)
        graphdef, params, opt_state = init_train_state(plan.model, hparams, 0)
        trajectory = [jax.tree.map(np.array, params)]  # Copies: the step donates its inputs.
        task = make_task(plan.data)
        for step in range(3):
            batch = {k: jnp.asarray(v) for k, v in task.batch(step, 8).items()}
            params, opt_state, _ = train_step(
                graphdef, params, opt_state, batch, step, jax.random.key(0), hparams,
                objective="teacher_forcing",
            )  # fmt: skip
            trajectory.append(jax.tree.map(np.array, params))
        runs[decay] = hparams, trajectory, opt_state
    plain_hparams, plain, plain_opt = runs[0.0]
    assert not plain_hparams.ema and ema.ema_params(plain_opt) is None and len(plain_opt) == 2
    hparams, averaged, averaged_opt = runs[0.25]
    assert hparams.ema
    for plain_params, averaged_params in zip(plain, averaged, strict=True):
        _check_close(averaged_params, plain_params)
    _check_close(averaged_opt[:2], plain_opt)  # Clipping's and AdamW's state.
    _check_close(ema.ema_params(averaged_opt), _hand_ema(averaged, 0.25))


STEPS = 6


def _run_config():
    """experiments/tiny.py, 6 steps with an EMA of decay 0.9 (the warm-up caps it at 2/11 ...
    7/16, so the EMA is far from the params), checkpoints and held-out losses at 3 and 6."""
    return _tiny_config(
        num_steps=STEPS, log_every=3, eval_every=3, checkpoint_every=3, ema_decay=0.9,
        peak_flops_per_device=1e11,  # Skip the peak benchmark: not under test.
    )  # fmt: skip


def _train(workdir: str):
    config = _run_config()
    return train_experiment(make_plans(config, "causal"), workdir, experiment_json(config))


@pytest.fixture(scope="module")
def ema_run(tmp_path_factory):
    """The causal variant of `_run_config()`, trained: (workdir, its plan)."""
    workdir = str(tmp_path_factory.mktemp("ema"))
    _train(workdir)
    return workdir, make_plan(_run_config(), "causal")


def _saved_state(run_dir: str, plan):
    """(step, params, opt_state) of the run's newest checkpoint, the whole training state."""
    _, params, opt_state = init_train_state(plan.model, Hyperparams.from_config(plan.train), 0)
    manager = checkpoints.make_manager(run_dir, 3)
    try:
        return checkpoints.restore_latest(manager, params, opt_state)
    finally:
        checkpoints.close(manager)


@pytest.mark.slow  # A small training run (about 8 s to set up).
def test_evaluation_reads_the_ema_of_a_run_that_kept_one(ema_run):
    workdir, plan = ema_run
    run_dir = run_folder.run_dir(workdir, "causal", 0)
    step, params, opt_state = _saved_state(run_dir, plan)
    model, _, _, loaded_step = checkpoints.load_params(run_dir)
    assert loaded_step == step == STEPS
    assert _equal(nnx.state(model), ema.ema_params(opt_state))
    assert not _equal(nnx.state(model), params)
    # The learning curve and checkpoint averaging read the EMA at every step too.
    (kept_step, kept), (last_step, last) = checkpoint_history.models(run_dir)
    assert (kept_step, last_step) == (3, STEPS) and _equal(nnx.state(last), nnx.state(model))
    assert not _equal(nnx.state(kept), nnx.state(model))
    # Asked for, the trained params themselves (benchmarks/ema.py compares the two).
    (_, _), (_, trained) = checkpoint_history.models(run_dir, ema=False)
    assert _equal(nnx.state(trained), params)


@pytest.mark.slow  # A small training run (about 8 s to set up).
def test_the_held_out_loss_during_training_is_the_ema_s(ema_run):
    workdir, plan = ema_run
    run_dir = run_folder.run_dir(workdir, "causal", 0)
    _, params, opt_state = _saved_state(run_dir, plan)
    graphdef = nnx.graphdef(checkpoints.load_params(run_dir)[0])
    task = make_task(plan.data)

    def held_out_loss(state) -> float:
        total, count = 0.0, 0.0
        for i in range(plan.train.eval_batches):
            rows = task.batch(i, plan.train.batch_size, split="eval")
            batch = {k: jnp.asarray(v) for k, v in rows.items()}
            loss_sum, n = eval_step(
                graphdef, state, batch, jax.random.key(i), objective="teacher_forcing"
            )
            total, count = total + float(loss_sum), count + float(n)
        return total / count

    with open(run_folder.metrics_path(run_dir)) as f:
        logged = [json.loads(line) for line in f]
    (last_eval,) = [r["loss"] for r in logged if r["split"] == "eval" and r["step"] == STEPS]
    np.testing.assert_allclose(last_eval, held_out_loss(ema.ema_params(opt_state)), rtol=1e-5)
    assert abs(last_eval - held_out_loss(params)) > 1e-3


@pytest.mark.slow  # A small training run (about 8 s to set up).
def test_a_resumed_run_ends_bitwise_equal_to_the_uninterrupted_one_ema_included(
    ema_run, tmp_path, capsys
):
    workdir, plan = ema_run
    resumed = str(tmp_path / "resumed")
    shutil.copytree(workdir, resumed)
    run_dir = run_folder.run_dir(resumed, "causal", 0)
    shutil.rmtree(os.path.join(run_folder.checkpoint_dir(run_dir), str(STEPS)))
    (result,) = _train(resumed)
    assert result.step == STEPS and "resuming at step 3" in capsys.readouterr().out
    reference = _saved_state(run_folder.run_dir(workdir, "causal", 0), plan)
    again = _saved_state(run_dir, plan)
    assert again[0] == reference[0] == STEPS
    assert ema.ema_params(again[2]) is not None
    assert _equal(again[1:], reference[1:])  # Params, Adam's state and the EMA, bitwise.
