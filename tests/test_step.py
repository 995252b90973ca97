"""training/step.py: the learning-rate schedule, weight decay, the pure train step and its
objectives (teacher forcing, sequential, masked), and traced hyperparameters."""

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from flax import nnx

from data import make_task, vocab
from experiments import tiny
from model import ModelConfig, architecture_of, make_decoder
from objectives import (
    length_loss,
    masked_cross_entropy,
    objective_of,
    teacher_forcing_loss,
    with_length_loss,
)
from objectives.masked import glancing_loss, masked_loss
from objectives.next_token import free_running_logits, sequential_loss
from plan import make_plan
from training import step as training_step
from training.step import (
    Hyperparams,
    init_train_state,
    learning_rate_at,
    make_optimizer,
    train_step,
    train_step_fn,
)

BATCH = 8


def _config(**train) -> ml_collections.ConfigDict:
    config = tiny.get_config()
    config.model.update(num_layers=1, d_model=16, num_heads=2, d_ff=32)
    config.train.update(**train)
    return config


def _setup(variant="causal", seed=0, **train):
    resolved = make_plan(_config(**train), variant)
    hparams = Hyperparams.from_config(resolved.train)
    graphdef, params, opt_state = init_train_state(resolved.model, hparams, seed)
    task = make_task(resolved.data)
    batch = {k: jnp.asarray(v) for k, v in task.batch(0, BATCH).items()}
    return resolved, hparams, graphdef, params, opt_state, batch


def test_learning_rate_warms_up_linearly_then_decays_to_the_floor():
    hparams = Hyperparams.from_config(
        _config(learning_rate=1e-2, warmup_steps=10, num_steps=110).train
    )
    lr = np.array([learning_rate_at(hparams, s) for s in range(111)])
    np.testing.assert_allclose(lr[:11], 1e-2 * np.minimum(np.arange(1, 12) / 10, 1), rtol=1e-6)
    assert np.all(np.diff(lr[10:]) <= 0)
    np.testing.assert_allclose(lr[110], 1e-2 * 0.1, rtol=1e-5)
    np.testing.assert_allclose(lr[60], 1e-2 * (0.1 + 0.9 * 0.5), rtol=1e-5)


def test_weight_decay_applies_to_matrices_only():
    hparams = Hyperparams.from_config(_config(learning_rate=1.0, weight_decay=0.5).train)
    params = {"kernel": jnp.ones((2, 3)), "bias": jnp.ones(3)}
    tx = make_optimizer(hparams)
    zero_grads = jax.tree.map(jnp.zeros_like, params)
    updates, _ = tx.update(zero_grads, tx.init(params), params)
    assert np.all(np.asarray(updates["kernel"]) < 0)
    np.testing.assert_array_equal(np.asarray(updates["bias"]), 0.0)


@pytest.mark.slow
def test_a_few_steps_lower_the_loss_on_a_fixed_batch():
    _, hparams, graphdef, params, opt_state, batch = _setup(learning_rate=1e-2, warmup_steps=0)
    losses = []
    for step in range(12):
        params, opt_state, step_metrics = train_step(
            graphdef,
            params,
            opt_state,
            batch,
            step,
            jax.random.key(0),
            hparams,
            objective="teacher_forcing",
        )
        losses.append(float(step_metrics["loss"]))
        assert step_metrics["loss_tokens"] == batch["loss_mask"].sum()
    assert losses[-1] < 0.5 * losses[0], losses
    assert np.isfinite(float(step_metrics["grad_norm"])) and float(step_metrics["grad_norm"]) > 0


@pytest.mark.slow
@pytest.mark.parametrize("objective", ["teacher_forcing", "sequential", "masked", "glancing"])
def test_each_objective_trains_with_a_finite_loss(objective):
    variant = "causal" if objective_of(objective).next_token else "full"
    _, hparams, graphdef, params, opt_state, batch = _setup(variant, objective=objective)
    before = jax.tree.map(np.array, params)  # A copy: params are donated.
    params, opt_state, step_metrics = train_step(
        graphdef, params, opt_state, batch, 3, jax.random.key(0), hparams, objective=objective
    )
    assert np.isfinite(float(step_metrics["loss"])) and float(step_metrics["loss"]) > 0
    changed = jax.tree.map(lambda a, b: not np.array_equal(a, np.asarray(b)), before, params)
    assert all(jax.tree.leaves(changed))


@pytest.mark.slow
def test_the_length_head_trains_with_the_masked_objectives_and_only_adds_its_weighted_loss():
    config = _config(objective="masked")
    config.model.length_head = True
    resolved = make_plan(config, "full")
    model = make_decoder(resolved.model, 0)
    batch = {k: jnp.asarray(v) for k, v in make_task(resolved.data).batch(0, BATCH).items()}
    rng = jax.random.key(0)
    plain, _ = masked_loss(model, batch, rng, None)
    for weight in (0.0, 0.5):
        total, _ = with_length_loss(masked_loss, weight)(model, batch, rng, None)
        expected = float(plain) + weight * float(length_loss(model, batch))
        np.testing.assert_allclose(float(total), expected, rtol=1e-6)
    # The head learns: its gradient from the weighted loss is not zero.
    grads = nnx.grad(lambda m: with_length_loss(masked_loss, 0.5)(m, batch, rng, None)[0])(model)
    assert float(jnp.abs(grads.length_head.kernel.value).sum()) > 0


class _WrongAtFirst:
    """A fake CMLM model: it predicts each row's own input tokens, except the first `wrong[b]`
    target positions of row b, where it predicts MASK (which no input holds)."""

    def __init__(self, cfg, wrong_B):
        self.cfg, self.wrong_B = cfg, wrong_B
        self.inputs = None

    def __call__(self, tokens_BxT, *, lengths_B, prefix_lengths_B, dropout_rng=None):
        T = tokens_BxT.shape[1]
        offset_BxT = jnp.arange(T)[None, :] - prefix_lengths_B[:, None]
        wrong_BxT = (offset_BxT >= 0) & (offset_BxT < self.wrong_B[:, None])
        predicted_BxT = jnp.where(wrong_BxT, vocab.MASK, self.inputs)
        return 10.0 * jax.nn.one_hot(predicted_BxT, self.cfg.vocab_size), None


@pytest.mark.slow
def test_glancing_learns_what_remains_after_revealing_ratio_times_the_first_pass_errors():
    resolved, *_, batch = _setup("full", objective="glancing")
    span_B = np.asarray(batch["lengths"] - batch["prefix_lengths"])
    wrong_B = np.minimum(np.arange(BATCH) % 4 * 2, span_B)  # 0, 2, 4, 6 errors (capped).
    fake = _WrongAtFirst(resolved.model, jnp.asarray(wrong_B))
    fake.inputs = batch["inputs"]
    assert (np.asarray(batch["inputs"]) != vocab.MASK).all()
    for ratio in (0.0, 0.5, 1.0):
        _, count = glancing_loss(fake, batch, jax.random.key(1), None, ratio=ratio)
        # Masked (and learnt) = the target minus the revealed floor(ratio x errors) tokens;
        # a row the first pass got right reveals nothing.
        assert int(count) == int((span_B - np.floor(ratio * wrong_B)).sum())
    # Annealed 0.5 -> 0.3: halfway through the run the ratio is 0.4 (as the step passes it).
    for progress, ratio in ((0.0, 0.5), (0.5, 0.4), (1.0, 0.3)):
        _, count = glancing_loss(
            fake, batch, jax.random.key(1), None, ratio=0.5, ratio_end=0.3, progress=progress
        )
        assert int(count) == int((span_B - np.floor(ratio * wrong_B)).sum())


@pytest.mark.slow
def test_the_step_passes_a_scheduled_objective_its_progress_through_the_run(monkeypatch):
    resolved, hparams, graphdef, params, opt_state, batch = _setup()
    hparams = dataclasses.replace(hparams, num_steps=jnp.float32(40))

    def loss(model, batch, rng, dropout_rng, progress=None, **settings):
        return teacher_forcing_loss(model, batch, rng, dropout_rng)[0] * 0 + progress, 1.0

    record = dataclasses.replace(objective_of("teacher_forcing"), loss=loss, takes_progress=True)
    monkeypatch.setattr(training_step, "objective_of", lambda name: record)
    for step, expected in ((0, 0.0), (10, 0.25), (40, 1.0)):
        *_, metrics = train_step_fn(
            graphdef, params, opt_state, batch, jnp.int32(step), jax.random.key(0), hparams,
            objective="teacher_forcing",
        )  # fmt: skip
        assert float(metrics["loss"]) == pytest.approx(expected)


def _greedy_continuation(model, batch) -> jax.Array:
    """Prompt tokens, then the model's own argmax, computed with full (no-cache) forward passes."""
    forward = jax.jit(lambda tokens: model(tokens)[0])
    tokens = np.array(batch["inputs"])
    prefix = np.asarray(batch["prefix_lengths"])
    for t in range(int(prefix.min()), tokens.shape[1]):
        predicted = np.asarray(jnp.argmax(forward(jnp.asarray(tokens))[:, t - 1], axis=-1))
        tokens[:, t] = np.where(t >= prefix, predicted, tokens[:, t])
    return jnp.asarray(tokens)


@pytest.mark.slow
def test_sequential_objective_feeds_the_models_own_predictions(exact_fp32_matmuls):
    resolved, *_, batch = _setup()
    model = make_decoder(resolved.model, 0)
    rng = jax.random.key(0)
    tf_loss, _ = teacher_forcing_loss(model, batch, rng, None)
    seq_loss, _ = sequential_loss(model, batch, rng, None)
    assert abs(float(seq_loss) - float(tf_loss)) > 1e-3  # An untrained model mispredicts.
    # Teacher forcing on the model's own greedy continuation gives the same logits: the
    # sequential objective really reads its predictions (and only after the prompt).
    own = dict(batch, inputs=_greedy_continuation(model, batch))
    own_logits, _ = model(own["inputs"])
    seq_logits = free_running_logits(model, batch, None)
    mask = np.asarray(batch["loss_mask"], bool)
    np.testing.assert_allclose(
        np.asarray(seq_logits)[mask], np.asarray(own_logits)[mask], atol=2e-5, rtol=1e-5
    )
    own_loss, _ = masked_cross_entropy(own_logits, batch["targets"], batch["loss_mask"])
    np.testing.assert_allclose(float(seq_loss), float(own_loss), rtol=1e-5)


class _OracleModel:
    """A fake decoder: logits favour targets[position] + shift, plus a mark of the token fed."""

    def __init__(self, cfg: ModelConfig, targets_BxT: jax.Array, shift: int):
        self.cfg, self.targets_BxT, self.shift = cfg, targets_BxT, shift

    def __call__(self, tokens_BxT, *, positions_BxT=None, cache=None, **unused):
        if positions_BxT is None:
            positions_BxT = jnp.broadcast_to(jnp.arange(tokens_BxT.shape[1]), tokens_BxT.shape)
        predicted_BxT = jnp.take_along_axis(self.targets_BxT, positions_BxT, axis=1) + self.shift
        V = self.cfg.vocab_size
        logits_BxTxV = 20.0 * jax.nn.one_hot(predicted_BxT % V, V) + jax.nn.one_hot(tokens_BxT, V)
        return logits_BxTxV, cache


def test_sequential_equals_teacher_forcing_exactly_when_predictions_are_perfect():
    resolved, *_, batch = _setup()
    cfg, rng = resolved.model, jax.random.key(0)
    perfect = _OracleModel(cfg, batch["targets"], shift=0)
    np.testing.assert_array_equal(
        np.asarray(sequential_loss(perfect, batch, rng, None)[0]),
        np.asarray(teacher_forcing_loss(perfect, batch, rng, None)[0]),
    )
    wrong = _OracleModel(cfg, batch["targets"], shift=1)  # Fed its wrong guesses: other logits.
    seq, tf = (
        sequential_loss(wrong, batch, rng, None)[0],
        teacher_forcing_loss(wrong, batch, rng, None)[0],
    )
    assert abs(float(seq) - float(tf)) > 1e-3


def test_hyperparams_are_traced_so_changing_them_does_not_recompile():
    _, hparams, graphdef, params, opt_state, batch = _setup()
    args = (graphdef, params, opt_state, batch, 0, jax.random.key(0))
    lowered = train_step.lower(*args, hparams, objective="teacher_forcing")
    other = dataclasses.replace(hparams, learning_rate=jnp.float32(1e30))
    relowered = train_step.lower(*args, other, objective="teacher_forcing")
    assert lowered.as_text() == relowered.as_text()


@pytest.mark.slow
def test_a_short_bfloat16_run_tracks_float32():
    """bf16 compute with fp32 params, optimizer state, logits and softmax: the loss curve of 30
    steps stays within a few percent of the fp32 one, from the same init and batches."""
    curves = {}
    for dtype in ("float32", "bfloat16"):
        config = _config(learning_rate=3e-3, warmup_steps=0, num_steps=30)
        config.model.dtype = dtype
        resolved = make_plan(config, "causal")
        hparams = Hyperparams.from_config(resolved.train)
        graphdef, params, opt_state = init_train_state(resolved.model, hparams, 0)
        assert {leaf.dtype for leaf in jax.tree.leaves(params)} == {jnp.dtype("float32")}
        task, curves[dtype] = make_task(resolved.data), []
        for step in range(30):
            batch = {k: jnp.asarray(v) for k, v in task.batch(step, BATCH).items()}
            params, opt_state, step_metrics = train_step(
                graphdef, params, opt_state, batch, step, jax.random.key(0), hparams,
                objective="teacher_forcing",
            )  # fmt: skip
            curves[dtype].append(float(step_metrics["loss"]))
    fp32, bf16 = np.array(curves["float32"]), np.array(curves["bfloat16"])
    assert fp32[-1] < 0.8 * fp32[0]  # The curve being tracked does move.
    np.testing.assert_allclose(bf16, fp32, rtol=0.05)


@pytest.mark.slow
def test_label_smoothing_is_cross_entropy_against_the_smoothed_one_hot():
    logits_BxTxV = jax.random.normal(jax.random.key(0), (2, 5, 11)) * 3
    targets_BxT = jax.random.randint(jax.random.key(1), (2, 5), 0, 11)
    mask_BxT = jnp.asarray([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], jnp.float32)
    smoothed_BxTxV = optax.smooth_labels(jax.nn.one_hot(targets_BxT, 11), 0.1)
    expected_BxT = optax.softmax_cross_entropy(logits_BxTxV, smoothed_BxTxV)
    expected = (expected_BxT * mask_BxT).sum() / mask_BxT.sum()
    got, count = masked_cross_entropy(logits_BxTxV, targets_BxT, mask_BxT, 0.1)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert count == 8
    plain, _ = masked_cross_entropy(logits_BxTxV, targets_BxT, mask_BxT)
    nll_BxT = optax.softmax_cross_entropy_with_integer_labels(logits_BxTxV, targets_BxT)
    np.testing.assert_allclose(plain, (nll_BxT * mask_BxT).sum() / 8, rtol=1e-6)


@pytest.mark.slow
def test_a_glancing_steps_flops_count_its_first_pass_as_xla_does():
    """GLAT's step runs the model twice (a forward without gradient, then the training pass):
    its logged FLOPs are 4/3 of CMLM's on the same batch, and XLA's count of both losses'
    forward and backward gives the same ratio, within 10%."""
    resolved, *_, batch = _setup("full", objective="masked")
    graphdef, state = nnx.split(make_decoder(resolved.model, 0))
    arch, cfg = architecture_of(resolved.model), resolved.model
    counted, xla = {}, {}
    for name, loss_fn in (("masked", masked_loss), ("glancing", glancing_loss)):

        def loss(state, loss_fn=loss_fn):
            return loss_fn(nnx.merge(graphdef, state), batch, jax.random.key(1), None)[0]

        cost = jax.jit(jax.grad(loss)).lower(state).compile().cost_analysis()
        xla[name] = (cost[0] if isinstance(cost, list) else cost)["flops"]
        counted[name] = objective_of(name).step_flops(arch, cfg, batch)
    assert counted["glancing"] / counted["masked"] == pytest.approx(4 / 3)
    assert xla["glancing"] / xla["masked"] == pytest.approx(4 / 3, rel=0.1)
