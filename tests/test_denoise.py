"""The denoising loop (model/denoise.py) on fake models: the schedules, logits reused where
nothing changed, top-k / top-p, and the Gumbel noise's tail."""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from model import denoise_loop
from model.denoise import gumbel_noise

V, MASK = 13, 4


@functools.partial(jax.jit, static_argnames=("logits_fn", "strategy", "reuse_logits"))
def _run_loop(
    logits_fn, tokens_BxK, target_BxK, num_steps, temperature, rng, strategy, reuse_logits=True
):
    return denoise_loop(
        logits_fn, tokens_BxK, target_BxK, rng, num_steps, temperature,
        mask_id=MASK, strategy=strategy, reuse_logits=reuse_logits,
    )[0]  # fmt: skip


def _steps_seen(logits_fn, lengths, K, num_steps, strategy, temperature=1.0):
    """The tokens each step's input holds, [T, B, K], and the loop's output."""
    seen = []

    def recording(tokens_BxK):
        jax.debug.callback(lambda t: seen.append(np.asarray(t)), tokens_BxK)
        return logits_fn(tokens_BxK)

    target_BxK = np.arange(K)[None, :] < np.asarray(lengths)[:, None]
    out = _run_loop(
        recording, jnp.zeros(target_BxK.shape, jnp.int32), target_BxK, num_steps, temperature,
        jax.random.key(0), strategy,
    )  # fmt: skip
    jax.block_until_ready(out)
    return np.stack(seen), np.asarray(out)


def _fixed_token(tokens_BxK):
    """A fake model sure of token 7 everywhere (and surer still of MASK, never drawn)."""
    return (
        1e4 * jax.nn.one_hot(jnp.full(tokens_BxK.shape, 7), V)
        + 2e4 * (jnp.arange(V) == MASK)[None, None]
    )


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["ancestral", "confidence"])
def test_a_model_sure_of_one_token_writes_it_at_every_target_position_and_nowhere_else(strategy):
    tokens_BxK = jnp.array([[9, 9, 9, 9], [9, 9, 9, 9]])
    target_BxK = jnp.array([[True, True, True, False], [True, False, False, False]])
    for num_steps, temperature in [(1, 0.0), (3, 1.0), (8, 2.0)]:
        out = _run_loop(
            _fixed_token, tokens_BxK, target_BxK, num_steps, temperature, jax.random.key(1),
            strategy,
        )  # fmt: skip
        np.testing.assert_array_equal(out, [[7, 7, 7, 9], [7, 9, 9, 9]])


def test_confidence_unmasks_on_the_linear_schedule_most_confident_first():
    K, T = 10, 4

    def rising(tokens_BxK):  # Position k proposes token (5 + k) % V, surer the further right.
        k_K = jnp.arange(K)
        return (1.0 + k_K)[None, :, None] * jax.nn.one_hot((5 + k_K) % V, V)[None]

    seen_TxBxK, out = _steps_seen(rising, [10, 5], K, T, "confidence", temperature=0.0)
    # floor(n (T - i) / T) masked before step i: n = 10 and n = 5.
    np.testing.assert_array_equal(
        (seen_TxBxK == MASK).sum(axis=2), [[10, 5], [7, 3], [5, 2], [2, 1]]
    )
    # The right end of each row's target (the most confident) is committed first.
    np.testing.assert_array_equal(seen_TxBxK[2, 0] == MASK, np.arange(K) < 5)
    np.testing.assert_array_equal(seen_TxBxK[2, 1] == MASK, np.arange(K) < 2)
    np.testing.assert_array_equal(out[0], (5 + np.arange(K)) % V)
    np.testing.assert_array_equal(out[1, 5:], 0)  # Outside the target: kept.


def test_ancestral_with_t_equal_to_the_length_keeps_t_of_the_tokens_masked_at_time_t():
    B, K = 4000, 8

    def uniform(tokens_BxK):
        return jnp.zeros(tokens_BxK.shape + (V,))

    seen_TxBxK, out = _steps_seen(uniform, np.full(B, K), K, K, "ancestral")
    # Each masked token is unmasked with probability 1 / (T - i) at step i, so a share
    # (T - i) / T is still masked before step i, and none after the last.
    share_T = (seen_TxBxK == MASK).mean(axis=(1, 2))
    np.testing.assert_allclose(share_T, (K - np.arange(K)) / K, atol=0.01)
    assert not np.any(out == MASK) and np.all(out < V)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["ancestral", "confidence"])
def test_a_step_that_unmasked_nothing_reuses_the_logits_and_changes_no_token(strategy):
    # T = 24 steps for 2 rows of 3 tokens: most steps unmask nothing. The model is called once
    # per distinct input (the first, then after each step that unmasked a token), and the
    # tokens are those of calling it at every step. Its logits depend on the tokens.
    calls, seen = [], []

    def reads_tokens(tokens_BxK):
        jax.debug.callback(lambda t: (calls.append(1), seen.append(np.asarray(t))), tokens_BxK)
        mixed_BxK = (tokens_BxK.sum(axis=1, keepdims=True) + 3 * jnp.arange(3)[None]) % V
        return 3.0 * jax.nn.one_hot(mixed_BxK, V)

    target_BxK = jnp.ones((2, 3), bool)
    outs = {}
    for reuse in (False, True):
        calls.clear()
        tokens, counted = jax.jit(
            lambda tokens, reuse=reuse: denoise_loop(
                reads_tokens, tokens, target_BxK, jax.random.key(5), 24, 1.0,
                mask_id=MASK, strategy=strategy, reuse_logits=reuse,
            )
        )(jnp.zeros((2, 3), jnp.int32))  # fmt: skip
        jax.block_until_ready(tokens)
        outs[reuse] = tokens
        assert int(counted) == len(calls)  # The loop's own count is the calls made.
        outs[reuse, "calls"] = len(calls)
        if not reuse:  # The steps at which some row unmasked: its inputs, then its output.
            states = [*seen[:24], np.asarray(tokens)]
            unmasking_steps = sum(not np.array_equal(a, b) for a, b in itertools.pairwise(states))
    np.testing.assert_array_equal(outs[True], outs[False])
    assert outs[False, "calls"] == 24
    # One call per step at which some row unmasks: the first call serves the first such step,
    # and none follows the last (nothing is left to unmask).
    assert outs[True, "calls"] == unmasking_steps <= 6


def test_top_k_and_top_p_draw_proposals_from_the_likeliest_tokens_only():
    # One step unmasks every token (T = 1), each drawn from p = (0.6, 0.3, 0.1) over tokens
    # 7, 8, 9 at temperature 1: top_p 0.5 keeps 7 alone, top_p 0.85 keeps 7 and 8, top_k 2 as
    # well; unfiltered, 9 is drawn about 10% of the time.
    log_p = jnp.log(jnp.array([0.6, 0.3, 0.1]))

    def three_tokens(tokens_BxK):
        logits_V = jnp.full((V,), -jnp.inf).at[7:10].set(log_p)
        return jnp.broadcast_to(logits_V, tokens_BxK.shape + (V,))

    @jax.jit
    def loop(top_k, top_p):  # The filters traced: one program for every setting.
        return denoise_loop(
            three_tokens, jnp.zeros((500, 4), jnp.int32), jnp.ones((500, 4), bool),
            jax.random.key(2), 1, 1.0, mask_id=MASK, strategy="ancestral", top_k=top_k,
            top_p=top_p,
        )[0]  # fmt: skip

    def drawn(top_k=0, top_p=1.0):
        tokens = loop(jnp.int32(top_k), jnp.float32(top_p))
        return np.bincount(np.asarray(tokens).ravel(), minlength=V)[7:10] / 2000

    np.testing.assert_allclose(drawn(), [0.6, 0.3, 0.1], atol=0.04)
    np.testing.assert_array_equal(drawn(top_p=0.5), [1.0, 0.0, 0.0])
    for filters in (dict(top_p=0.85), dict(top_k=2)):
        share = drawn(**filters)
        assert share[2] == 0.0 and abs(share[0] - 2 / 3) < 0.04


@pytest.mark.slow
def test_the_gumbel_noise_reaches_past_the_float32_low_mode_cap_of_15_94():
    # 2^25 draws, a vocabulary of 32k times 1k positions: ~3.8 expected above 16, none possible
    # in the low mode (the largest float32 below 1 caps -log(-log u) at 15.94).
    noise = gumbel_noise(jax.random.key(0), (1 << 10, 1 << 15))
    assert float(noise.max()) > 16.0
    assert float(jax.random.gumbel(jax.random.key(0), (1 << 10, 1 << 15)).max()) < 15.95


def _count_dependent(tokens_BxK):
    """A fake model whose odds of token 5 over 6 at a position grow with the tokens its row has
    already unmasked: the samples depend on how the reveals were grouped into steps."""
    unmasked_Bx1 = jnp.sum(tokens_BxK != MASK, axis=1, keepdims=True).astype(jnp.float32)
    k_1xK = jnp.arange(tokens_BxK.shape[1])[None, :]
    odds_BxK = 1.5 * unmasked_Bx1 - 1.5 + 0.7 * k_1xK
    logits = jnp.full((*tokens_BxK.shape, V), -30.0)
    return logits.at[..., 5].set(odds_BxK).at[..., 6].set(0.0)


@pytest.mark.slow
@pytest.mark.parametrize(
    "num_steps",
    [2, 3, 7],
)
def test_first_hitting_samples_as_ancestral_does_with_fewer_calls(num_steps):
    """Each token's step drawn up front (uniform: ancestral's 1 / (T - i) at step i) gives the
    ancestral sampler's distribution of samples, over 4,000 keys (total variation within the
    sampling noise; grouping the reveals otherwise, as T = 1 or 1000 do, moves it by about
    0.24), calling the model once per distinct step a row unmasks at."""
    K, n = 3, 4000
    target = jnp.ones((1, K), bool)

    @functools.partial(jax.jit, static_argnames="strategy")
    def samples(strategy):
        def one(key):
            return denoise_loop(
                _count_dependent, jnp.zeros((1, K), jnp.int32), target, key, num_steps, 1.0,
                mask_id=MASK, strategy=strategy,
            )  # fmt: skip

        return jax.vmap(one)(jax.random.split(jax.random.key(7), n))

    frequencies = {}
    for strategy in ("ancestral", "first_hit"):
        tokens, calls = samples(strategy)
        codes = np.asarray(tokens[:, 0] == 5) @ (2 ** np.arange(K))
        frequencies[strategy] = np.bincount(codes, minlength=2**K) / n
        assert set(np.unique(np.asarray(tokens))) <= {5, 6}
        if strategy == "first_hit":
            assert np.asarray(calls).max() <= min(K, num_steps)
    total_variation = 0.5 * np.abs(frequencies["ancestral"] - frequencies["first_hit"]).sum()
    assert total_variation < 0.05, frequencies


def test_first_hitting_calls_the_model_once_per_event_not_per_step_of_any_row():
    """At batch 64, blocks of 4, T = 8: ancestral sampling calls at nearly every step (some row
    unmasks at each); first hitting calls at most 4 times."""
    target = jnp.ones((64, 4), bool)

    @functools.partial(jax.jit, static_argnames="strategy")
    def calls(strategy):
        return denoise_loop(
            _count_dependent, jnp.zeros((64, 4), jnp.int32), target, jax.random.key(1), 8, 1.0,
            mask_id=MASK, strategy=strategy,
        )[1]  # fmt: skip

    assert int(calls("first_hit")) == 4 and int(calls("ancestral")) == 8
