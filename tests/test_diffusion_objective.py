"""model/diffusion.py and train.objective="diffusion": the time draw, the forward process, the
Monte Carlo ELBO against an exact enumeration, BD3-LM's two-copy pass, the train step and
held-out loss, and the settings that are refused."""

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from conftest import make_tiny_config
from flax import nnx

from data import make_task, vocab
from experiments import tiny
from model import architecture_of, diffusion, make_decoder
from objectives import length_loss, objective_of, teacher_forcing_loss, with_length_loss
from objectives.diffusion import diffusion_loss
from plan import make_plan
from sections import TrainConfig
from training.step import Hyperparams, eval_step, init_train_state, train_step

# Two rows: a prompt of 1 (BOS) with 4 targets, and a prompt of 3 with 2 targets, then padding.
INPUTS = jnp.asarray([[1, 5, 6, 7, 8, 2, 0, 0], [1, 6, 3, 7, 5, 2, 0, 0]], jnp.int32)
PREFIX = jnp.asarray([1, 3], jnp.int32)
LENGTHS = jnp.asarray([5, 5], jnp.int32)


@functools.cache
def _split(kind: str, block_size: int = 1) -> tuple[nnx.GraphDef, nnx.State]:
    """A tiny model (split: the passes below are jitted, as eager ones cost seconds each)."""
    cfg = make_tiny_config(
        vocab_size=12, max_len=8, attention_mask_kind=kind, block_size=block_size
    )
    return nnx.split(make_decoder(cfg, 0))


@functools.partial(jax.jit, static_argnames=("graphdef",))
def _logits(graphdef, state, noised_BxT, inputs_BxT, prefix_B, lengths_B):
    model = nnx.merge(graphdef, state)
    return diffusion.denoiser_logits(model, noised_BxT, inputs_BxT, prefix_B, lengths_B)


@functools.partial(jax.jit, static_argnames=("graphdef", "counts"))
def _terms(graphdef, state, t_BxK, rng, counts=False):
    model = nnx.merge(graphdef, state)
    return diffusion.elbo_terms(
        model, INPUTS, PREFIX, LENGTHS, t_BxK, rng, mask_id=vocab.MASK, counts=counts
    )


def test_stratified_times_put_one_time_in_each_stratum_of_the_interval():
    t_N = np.asarray(diffusion.stratified_times(jax.random.key(3), 16, eps=0.2))
    assert np.all((t_N > 0.2) & (t_N <= 1.0))
    strata = np.floor((1.0 - t_N) / 0.8 * 16).astype(int)
    assert sorted(strata) == list(range(16))
    t_NxBxK = diffusion.stratified_times(jax.random.key(3), 4, (3, 2))
    assert t_NxBxK.shape == (4, 3, 2) and np.all(np.asarray(t_NxBxK) > 0.0)


def test_noise_masks_target_tokens_with_probability_one_minus_alpha_and_nothing_else():
    B, T = 512, 8
    inputs = jnp.tile(INPUTS[:1], (B, 1))
    span = diffusion.target_span(jnp.full((B,), 1), jnp.full((B,), 5), T)
    noised, masked = diffusion.noise(
        inputs, span, jnp.full((B, T), 0.3), jax.random.key(0), vocab.MASK
    )
    assert not np.any(np.asarray(masked)[:, [0, 5, 6, 7]])
    np.testing.assert_array_equal(noised, jnp.where(masked, vocab.MASK, inputs))
    assert abs(float(masked[:, 1:5].mean()) - float(1.0 - diffusion.alpha(0.3))) < 0.03


def _exact_elbo(graphdef, state, block_size: int | None) -> np.ndarray:
    """Each row's negative ELBO by enumeration: within each block of m target tokens, a masking
    pattern of k tokens has weight (k - 1)! (m - k)! / m! once t is integrated out; under
    block_causal the other blocks' noise is invisible, so they are left clean. One model call
    reads every pattern."""
    rows, patterns, weights = [], [], []
    for row in range(len(PREFIX)):
        span = list(range(int(PREFIX[row]), int(LENGTHS[row])))
        size = block_size or len(span)
        for block in (span[i : i + size] for i in range(0, len(span), size)):
            m = len(block)
            for k in range(1, m + 1):
                for pattern in itertools.combinations(block, k):
                    rows.append(row)
                    patterns.append(np.isin(np.arange(INPUTS.shape[1]), pattern))
                    weights.append(
                        math.factorial(k - 1) * math.factorial(m - k) / math.factorial(m)
                    )
    rows = np.array(rows)
    inputs = INPUTS[rows]
    masked = jnp.asarray(np.stack(patterns))
    noised = jnp.where(masked, vocab.MASK, inputs)
    logits = _logits(graphdef, state, noised, inputs, PREFIX[rows], LENGTHS[rows])
    nll = np.asarray(diffusion.token_nll(logits, inputs, vocab.MASK))
    terms = np.asarray(weights) * (nll * np.asarray(masked)).sum(axis=1)
    return np.bincount(rows, weights=terms, minlength=len(PREFIX))


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind, block_size, counts",
    [
        ("prefix_full", 1, True),
        ("block_causal", 2, True),
        ("prefix_full", 1, False),
        ("block_causal", 2, False),
    ],
)
def test_the_monte_carlo_elbo_agrees_with_the_enumeration_over_masking_patterns(
    kind, block_size, counts
):
    """Both mask draws (by count: the evaluation's; per token: training's, whose 1/t weight
    makes it far noisier) estimate the enumerated bound."""
    graphdef, state = _split(kind, block_size)
    exact_B = _exact_elbo(graphdef, state, block_size if kind == "block_causal" else None)

    @jax.jit
    def samples(state):
        return diffusion.elbo_samples(
            nnx.merge(graphdef, state), INPUTS, PREFIX, LENGTHS, jax.random.key(1),
            num_samples=128 if counts else 4096, mask_id=vocab.MASK, counts=counts,
        )  # fmt: skip

    nats_NxB, tokens_B = samples(state)
    nats_NxB = np.asarray(nats_NxB)
    np.testing.assert_array_equal(tokens_B, [4, 2])
    sem_B = nats_NxB.std(axis=0) / math.sqrt(len(nats_NxB))
    assert np.all(sem_B < (0.01 if counts else 0.1) * exact_B), sem_B
    assert np.all(np.abs(nats_NxB.mean(axis=0) - exact_B) < 4 * sem_B), (
        nats_NxB.mean(axis=0),
        exact_B,
        sem_B,
    )


def test_count_masks_mask_ceil_m_t_tokens_of_each_block_weighted_m_over_k():
    T, prefix, lengths = 12, jnp.asarray([1, 4]), jnp.asarray([12, 9])  # Spans of 11 and 5.
    cfg = make_tiny_config(attention_mask_kind="block_causal", block_size=4)
    span = diffusion.target_span(prefix, lengths, T)
    blocks = diffusion.position_blocks(cfg, prefix, T)
    t_BxK = jnp.asarray([[0.1, 0.5, 1.0], [0.3, 0.9, 0.5]])
    for seed in range(2):
        masked, weight = diffusion.count_masks(span, blocks, t_BxK, jax.random.key(seed))
        masked, weight = np.asarray(masked), np.asarray(weight)
        assert not np.any(masked & ~np.asarray(span))
        for row, expected in enumerate([[1, 2, 3], [2, 1, 0]]):  # ceil(m t): m = 4 4 3; 4 1.
            counts = [masked[row][np.asarray(blocks[row]) == k].sum() for k in range(3)]
            assert counts == expected, (row, counts)
        np.testing.assert_allclose(weight[0, 1:12], [4.0] * 4 + [2.0] * 4 + [1.0] * 3)
        np.testing.assert_allclose(weight[1, 4:9], [2.0] * 4 + [1.0])


@pytest.mark.slow  # 3-6 s on the 2-core CPU: `make test` stays within 3 minutes.
def test_bd3_with_block_size_1_bounds_exactly_the_models_next_token_nll():
    """Each block is one token: E_t[(1/t) 1[masked] CE] = CE, and a noised token's CE does not
    depend on the other blocks' noise, so the bound is the sum of -log p(x_i | x_<i, MASK at i),
    computed here with one single-copy pass per position."""
    graphdef, state = _split("block_causal", 1)
    cfg = nnx.merge(graphdef, state).cfg
    T, K = INPUTS.shape[1], diffusion.num_blocks(cfg, INPUTS.shape[1])
    all_masked_B, _ = _terms(graphdef, state, jnp.ones((2, K)), jax.random.key(0))

    @jax.jit
    def single_copy_nll(i):
        tokens = INPUTS.at[:, i].set(vocab.MASK)
        logits, _ = nnx.merge(graphdef, state)(
            tokens, lengths_B=jnp.minimum(LENGTHS, i + 1), prefix_lengths_B=PREFIX
        )
        return diffusion.token_nll(logits, INPUTS, vocab.MASK)[:, i]

    nll_BxT = np.stack([np.asarray(single_copy_nll(i)) for i in range(T)], axis=1)
    span = np.asarray(diffusion.target_span(PREFIX, LENGTHS, T))
    np.testing.assert_allclose(all_masked_B, (nll_BxT * span).sum(axis=1), rtol=1e-5)
    # Any times and masks: each masked token's CE is the one above, weighted 1/t.
    t_BxK = jax.random.uniform(jax.random.key(5), (2, K), minval=0.2, maxval=1.0)
    t_BxT = np.asarray(jnp.take_along_axis(t_BxK, diffusion.position_blocks(cfg, PREFIX, T), 1))
    for seed in range(3):
        noised, masked = diffusion.noise(INPUTS, span, t_BxT, jax.random.key(seed), vocab.MASK)
        drawn_B, _ = _terms(graphdef, state, t_BxK, jax.random.key(seed))
        expected_B = (np.asarray(masked) * nll_BxT / t_BxT).sum(axis=1)
        np.testing.assert_allclose(drawn_B, expected_B, rtol=1e-5)


def test_a_noised_block_reads_its_own_noise_and_only_the_clean_blocks_before_it():
    graphdef, state = _split("block_causal", 2)
    args = (graphdef, state)
    inputs = jnp.asarray([[1, 5, 6, 7, 8, 9, 10, 2]], jnp.int32)
    prefix, lengths = jnp.asarray([1]), jnp.asarray([7])
    noised = inputs.at[0, 3].set(vocab.MASK)  # Block 1 is positions 3-4.
    logits = _logits(*args, noised, inputs, prefix, lengths)
    later_clean = inputs.at[0, 3:7].set(11)  # Block 1's own clean tokens, and later blocks.
    other_noise = noised.at[0, 1:3].set(vocab.MASK).at[0, 5:7].set(vocab.MASK)
    for clean, noisy in ((later_clean, noised), (inputs, other_noise)):
        moved = _logits(*args, noisy, clean, prefix, lengths)
        np.testing.assert_array_equal(moved[0, 3:5], logits[0, 3:5])
    earlier = _logits(*args, noised, inputs.at[0, 2].set(11), prefix, lengths)
    assert np.abs(np.asarray(earlier[0, 3:5] - logits[0, 3:5])).max() > 1e-4


def _config(variant="full", **train):
    config = tiny.get_config()
    config.model.update(num_layers=1, d_model=16, num_heads=2, d_ff=32)
    config.train.update(objective="diffusion", **train)
    config.variants.block = {"model": {"attention_mask_kind": "block_causal", "block_size": 2}}
    return make_plan(config, variant)


@pytest.mark.slow
def test_the_held_out_loss_is_the_bound_masked_by_count_not_teacher_forced_ce():
    plan = _config()
    graphdef, params = nnx.split(make_decoder(plan.model, 0))
    batch = {k: jnp.asarray(v) for k, v in make_task(plan.data).batch(0, 4).items()}
    loss_sum, count = eval_step(graphdef, params, batch, jax.random.key(2), objective="diffusion")

    @jax.jit
    def others(params):
        model = nnx.merge(graphdef, params)
        bound, tokens = diffusion_loss(model, batch, jax.random.key(2), None, counts=True)
        return bound * tokens, teacher_forcing_loss(model, batch, None, None)[0] * tokens

    bound_sum, teacher_forced_sum = others(params)
    np.testing.assert_allclose(float(loss_sum), float(bound_sum), rtol=1e-5)
    assert count == int((batch["lengths"] - batch["prefix_lengths"]).sum())
    assert abs(float(loss_sum) - float(teacher_forced_sum)) > 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["full", "block"])
def test_diffusion_training_lowers_the_held_out_bound(variant):
    plan = _config(variant, learning_rate=1e-2, warmup_steps=0)
    hparams = Hyperparams.from_config(plan.train)
    graphdef, params, opt_state = init_train_state(plan.model, hparams, 0)
    batch = {k: jnp.asarray(v) for k, v in make_task(plan.data).batch(0, 16).items()}

    def held_out(params):
        loss_sum, _ = eval_step(graphdef, params, batch, jax.random.key(9), objective="diffusion")
        return float(loss_sum)

    before = held_out(params)
    for step in range(25):
        params, opt_state, metrics = train_step(
            graphdef, params, opt_state, batch, step, jax.random.key(0), hparams,
            objective="diffusion",
        )  # fmt: skip
        assert np.isfinite(float(metrics["loss"]))
    # Every row ends with EOS: a block model's span takes it as a token, a full one's does not.
    eos_tokens = len(batch["lengths"]) * (variant == "block")
    targets = int((batch["lengths"] - batch["prefix_lengths"]).sum())
    assert metrics["loss_tokens"] == targets + eos_tokens
    assert held_out(params) < 0.8 * before


@pytest.mark.slow
def test_the_length_head_trains_with_diffusion_and_adds_its_weighted_loss():
    config = tiny.get_config()
    config.model.update(num_layers=1, d_model=16, num_heads=2, d_ff=32, length_head=True)
    config.train.objective = "diffusion"
    plan = make_plan(config, "full")
    graphdef, params = nnx.split(make_decoder(plan.model, 0))
    batch = {k: jnp.asarray(v) for k, v in make_task(plan.data).batch(0, 4).items()}

    @jax.jit
    def losses(params):
        model = nnx.merge(graphdef, params)
        plain, _ = diffusion_loss(model, batch, jax.random.key(0), None)
        total, _ = with_length_loss(diffusion_loss, 0.5)(model, batch, jax.random.key(0), None)
        return plain, total, length_loss(model, batch)

    plain, total, length = losses(params)
    np.testing.assert_allclose(float(total), float(plain) + 0.5 * float(length), rtol=1e-6)


@pytest.mark.slow
def test_an_encoder_decoder_trains_with_diffusion_under_its_full_mask():
    # 8 positions of inputs and the last target: diffusion reads the whole row (max_len 9).
    cfg = make_tiny_config(
        vocab_size=12, max_len=9, architecture="encoder_decoder", attention_mask_kind="full"
    )
    graphdef, params = nnx.split(make_decoder(cfg, 0))
    # The batch contract's targets: the inputs shifted by one (each row then ends with EOS).
    targets = jnp.pad(INPUTS[:, 1:], ((0, 0), (0, 1)))
    batch = {"inputs": INPUTS, "targets": targets, "prefix_lengths": PREFIX, "lengths": LENGTHS}

    @jax.jit
    def loss_and_grad_norm(params):
        def loss_of(params):
            return diffusion_loss(nnx.merge(graphdef, params), batch, jax.random.key(0), None)

        (loss, count), grads = jax.value_and_grad(loss_of, has_aux=True)(params)
        return loss, count, optax.global_norm(grads)

    loss, count, grad_norm = loss_and_grad_norm(params)
    assert np.isfinite(float(loss)) and float(loss) > 0 and count == 6
    assert np.isfinite(float(grad_norm)) and float(grad_norm) > 0


@pytest.mark.parametrize(
    "model, train, message",
    [
        ({"attention_mask_kind": "causal"}, {}, "needs model.attention_mask_kind to be one of"),
        ({"attention_mask_kind": "prefix"}, {}, "not 'prefix'"),
        ({"architecture": "encoder_decoder", "attention_mask_kind": "causal"}, {}, "not 'causal'"),
        ({}, {"label_smoothing": 0.1}, "train.label_smoothing must be 0"),
        ({}, {"diffusion_eps": 1.0}, r"train.diffusion_eps must be in \[0, 1\)"),
        ({}, {"diffusion_eps": -0.1}, r"train.diffusion_eps must be in \[0, 1\)"),
    ],
)
def test_settings_diffusion_cannot_train_with_are_refused_in_one_line(model, train, message):
    config = tiny.get_config()
    config.variants = ml_collections.ConfigDict()
    config.model.update(**{"attention_mask_kind": "full", **model})
    config.train.update(objective="diffusion", **train)
    with pytest.raises(ValueError, match=message) as error:
        make_plan(config, "")
    assert "\n" not in str(error.value)


def test_label_smoothing_is_refused_by_the_train_section_itself():
    with pytest.raises(ValueError, match="bound on the likelihood only without smoothing"):
        TrainConfig(objective="diffusion", label_smoothing=0.1)
    assert TrainConfig(objective="masked", label_smoothing=0.1).label_smoothing == 0.1


@pytest.mark.slow
def test_the_logged_flops_of_a_diffusion_step_follow_what_xla_computes():
    """Block diffusion's two copies cost under twice one copy's FLOPs (the clean copy skips
    its last layer but for keys and values, and the LM head): the objective's count (training's
    log, the learning curve's FLOPs) agrees with XLA's count of the loss's forward and
    backward, for one copy and for two, and so does their ratio."""
    counts = {}
    for kind in ("full", "block_causal"):
        cfg = make_tiny_config(
            vocab_size=64, d_model=64, num_heads=4, num_layers=2, d_ff=256, max_len=33,
            attention_mask_kind=kind, block_size=4,
        )  # fmt: skip
        graphdef, state = nnx.split(make_decoder(cfg, 0))
        rows = jax.random.randint(jax.random.key(0), (4, 33), 5, 64)
        batch = {
            "inputs": rows[:, :-1], "targets": rows[:, 1:],
            "lengths": jnp.full((4,), 32), "prefix_lengths": jnp.ones((4,), jnp.int32),
        }  # fmt: skip

        def loss(state, batch=batch, graphdef=graphdef):
            model = nnx.merge(graphdef, state)
            return diffusion_loss(model, batch, jax.random.key(1), None)[0]

        cost = jax.jit(jax.grad(loss)).lower(state).compile().cost_analysis()
        xla = (cost[0] if isinstance(cost, list) else cost)["flops"]
        ours = objective_of("diffusion").step_flops(architecture_of(cfg), cfg, batch)
        assert 0.8 < ours / xla < 1.1, (kind, ours, xla)
        counts[kind] = (ours, xla)
    ours_ratio = counts["block_causal"][0] / counts["full"][0]
    xla_ratio = counts["block_causal"][1] / counts["full"][1]
    assert 1.5 < ours_ratio < 2.0 and abs(ours_ratio / xla_ratio - 1) < 0.1
