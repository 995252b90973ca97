"""The samplers: a fake model for known outputs, cache vs no-cache agreement, no recompiles."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import make_tiny_config

from model import decode_loop, generate, generate_no_cache, make_decoder
from model import sample_logits as eager_sample_logits

V = 11
sample_logits = jax.jit(eager_sample_logits)


def _successor_step(tokens_BxL, positions_B, state):
    """A fake model: the next token is (token at position) + 1 mod V, with a confident logit."""
    last_B = jnp.take_along_axis(tokens_BxL, positions_B[:, None], axis=1)[:, 0]
    return 10.0 * jax.nn.one_hot((last_B + 1) % V, V), state


@functools.partial(jax.jit, static_argnames=("max_new_tokens",))
def _run_fake(prompts_BxP, prompt_lengths_B, max_new_tokens, eos_id=-1, **sampling):
    B, P = prompts_BxP.shape
    tokens_BxL = jnp.zeros((B, P + max_new_tokens), jnp.int32).at[:, :P].set(prompts_BxP)
    first_logits_BxV, _ = _successor_step(tokens_BxL, prompt_lengths_B - 1, None)
    params = dict(temperature=0.0, top_k=0, top_p=1.0) | sampling
    return decode_loop(
        _successor_step,
        None,
        first_logits_BxV,
        tokens_BxL,
        prompt_lengths_B,
        jax.random.key(0),
        jnp.float32(params["temperature"]),
        jnp.int32(params["top_k"]),
        jnp.float32(params["top_p"]),
        jnp.int32(eos_id),
        0,
        max_new_tokens,
    )


def test_fake_model_known_outputs_and_max_length():
    out = _run_fake(jnp.array([[3, 4, 0], [7, 0, 0]]), jnp.array([2, 1]), max_new_tokens=5)
    np.testing.assert_array_equal(
        np.asarray(out.tokens_BxL),
        [[3, 4, 5, 6, 7, 8, 9, 0], [7, 8, 9, 10, 0, 1, 0, 0]],
    )
    np.testing.assert_array_equal(np.asarray(out.lengths_B), [7, 6])


def test_eos_stops_a_row_and_pads_it_afterwards():
    out = _run_fake(jnp.array([[3], [8]]), jnp.array([1, 1]), max_new_tokens=6, eos_id=9)
    # Row 0 reaches 9 after 6 tokens (4..9); row 1 emits 9 first and is padded after it.
    np.testing.assert_array_equal(
        np.asarray(out.tokens_BxL), [[3, 4, 5, 6, 7, 8, 9], [8, 9, 0, 0, 0, 0, 0]]
    )
    np.testing.assert_array_equal(np.asarray(out.lengths_B), [7, 2])


@pytest.mark.slow
def test_loop_stops_early_once_every_row_has_ended():
    calls = []

    def counting_step(tokens_BxL, positions_B, state):
        jax.debug.callback(lambda: calls.append(1))
        return _successor_step(tokens_BxL, positions_B, state)

    B, P, N = 2, 1, 20
    tokens_BxL = jnp.zeros((B, P + N), jnp.int32).at[:, 0].set(jnp.array([1, 2]))
    first_BxV, _ = _successor_step(tokens_BxL, jnp.zeros(B, jnp.int32), None)
    decode_loop(
        counting_step,
        None,
        first_BxV,
        tokens_BxL,
        jnp.ones(B, jnp.int32),
        jax.random.key(0),
        jnp.float32(0),
        jnp.int32(0),
        jnp.float32(1),
        jnp.int32(4),
        0,
        N,
    )
    # Row 1 emits 3, 4 (EOS); row 0 emits 2, 3, 4: three tokens, so two steps after the prefill.
    assert len(calls) == 2


def _random_logits(seed=0, shape=(64, 50)):
    return jax.random.normal(jax.random.key(seed), shape) * 3.0


def test_top_k_one_and_tiny_top_p_equal_greedy():
    logits = _random_logits()
    greedy = np.asarray(jnp.argmax(logits, axis=-1))
    for seed in range(3):
        rng = jax.random.key(seed)
        top1 = sample_logits(logits, rng, jnp.float32(1.0), jnp.int32(1), jnp.float32(1.0))
        tiny_p = sample_logits(logits, rng, jnp.float32(1.0), jnp.int32(0), jnp.float32(1e-6))
        np.testing.assert_array_equal(np.asarray(top1), greedy)
        np.testing.assert_array_equal(np.asarray(tiny_p), greedy)


def test_top_k_and_top_p_only_sample_allowed_tokens():
    logits_BxV = jnp.tile(jnp.log(jnp.array([[0.5, 0.3, 0.15, 0.05]])), (2000, 1))
    rng = jax.random.key(0)
    top2 = np.asarray(sample_logits(logits_BxV, rng, jnp.float32(1), jnp.int32(2), jnp.float32(1)))
    assert set(top2.tolist()) == {0, 1}
    # Top-p 0.7: {0.5, 0.3} is the smallest set reaching 0.7.
    top_p = np.asarray(
        sample_logits(logits_BxV, rng, jnp.float32(1), jnp.int32(0), jnp.float32(0.7))
    )
    assert set(top_p.tolist()) == {0, 1}
    free = np.asarray(sample_logits(logits_BxV, rng, jnp.float32(1), jnp.int32(0), jnp.float32(1)))
    np.testing.assert_allclose(
        np.bincount(free, minlength=4) / 2000, [0.5, 0.3, 0.15, 0.05], atol=0.04
    )


def _mixed_prompts(cfg, B=6, P=7, seed=0):
    rng = np.random.default_rng(seed)
    prompts = rng.integers(0, cfg.vocab_size, (B, P))
    lengths = rng.integers(1, P + 1, B)
    lengths[0] = P
    return prompts, lengths


@pytest.mark.slow
@pytest.mark.parametrize("cache_phases", [1, 4])
@pytest.mark.parametrize("kind", ["causal", "prefix"])
def test_greedy_generate_equals_no_cache_on_mixed_prompt_lengths(kind, cache_phases):
    cfg = make_tiny_config(attention_mask_kind=kind)
    model = make_decoder(cfg, seed=3)
    for seed in range(2):
        prompts, lengths = _mixed_prompts(cfg, seed=seed)
        cached = generate(
            model, prompts, lengths, max_new_tokens=20, eos_id=2, cache_phases=cache_phases
        )
        honest = generate_no_cache(model, prompts, lengths, max_new_tokens=20, eos_id=2)
        np.testing.assert_array_equal(np.asarray(cached.tokens_BxL), np.asarray(honest.tokens_BxL))
        np.testing.assert_array_equal(np.asarray(cached.lengths_B), np.asarray(honest.lengths_B))


@pytest.mark.slow
def test_a_sequence_may_end_exactly_at_max_len():
    """The last sampled token is never fed back, so prompt + new tokens may be max_len + 1."""
    cfg = make_tiny_config(max_len=12)
    model = make_decoder(cfg)
    prompts, lengths = _mixed_prompts(cfg, P=5)
    cached = generate(model, prompts, lengths, max_new_tokens=8)
    honest = generate_no_cache(model, prompts, lengths, max_new_tokens=8)
    assert cached.tokens_BxL.shape == (6, 13)
    np.testing.assert_array_equal(np.asarray(cached.tokens_BxL), np.asarray(honest.tokens_BxL))


@pytest.mark.slow
@pytest.mark.parametrize("max_new_tokens", [1, 2, 3, 7])
def test_cache_phases_cover_short_generations(max_new_tokens):
    """Fewer decode steps than phases: every step still has a slot, and tokens match."""
    cfg = make_tiny_config()
    model = make_decoder(cfg, seed=1)
    prompts, lengths = _mixed_prompts(cfg)
    cached = generate(model, prompts, lengths, max_new_tokens=max_new_tokens, cache_phases=4)
    honest = generate_no_cache(model, prompts, lengths, max_new_tokens=max_new_tokens)
    np.testing.assert_array_equal(np.asarray(cached.tokens_BxL), np.asarray(honest.tokens_BxL))


@pytest.mark.slow
def test_generate_keeps_prompts_and_pads_after_the_row():
    cfg = make_tiny_config()
    prompts, lengths = _mixed_prompts(cfg)
    out = generate(make_decoder(cfg), prompts, lengths, max_new_tokens=9)
    tokens = np.asarray(out.tokens_BxL)
    assert tokens.shape == (6, 7 + 9)
    np.testing.assert_array_equal(np.asarray(out.lengths_B), lengths + 9)
    for row, n in enumerate(lengths):
        np.testing.assert_array_equal(tokens[row, :n], prompts[row, :n])
        assert np.all(tokens[row, n + 9 :] == 0)


@pytest.mark.slow
def test_new_sampling_parameters_and_prompts_compile_nothing_new():
    compiles = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, duration, **kw: (
            compiles.append(event)
            if event == "/jax/core/compile/backend_compile_duration"
            else None
        )
    )
    cfg = make_tiny_config()
    model = make_decoder(cfg)
    prompts, lengths = _mixed_prompts(cfg)
    generate(model, prompts, lengths, max_new_tokens=8, temperature=0.0)
    before = len(compiles)
    assert before > 0  # The listener works: the first call compiled.
    prompts2, lengths2 = _mixed_prompts(cfg, seed=1)
    for temperature, top_k, top_p in [(1.0, 0, 1.0), (0.7, 5, 1.0), (1.3, 0, 0.9)]:
        generate(
            model,
            prompts2,
            lengths2,
            max_new_tokens=8,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            rng=jax.random.key(1),
            eos_id=3,
        )
    assert len(compiles) == before


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(prompts=np.zeros((2, 60), np.int32)), "max_len"),
        (dict(max_new_tokens=45), "does not fit"),  # 5 + 45 > max_len + 1 = 49.
        (dict(prompts=np.full((2, 5), 23)), r"\[0, 23\)"),
        (dict(prompts=np.full((2, 5), -1)), r"\[0, 23\)"),
        (dict(prompt_lengths=[0, 3]), "prompt_lengths"),
        (dict(prompts=np.zeros((5,), np.int32)), "2-D"),
        (dict(top_p=0.0), "top_p"),
        (dict(max_new_tokens=0), "max_new_tokens"),
        (dict(cache_phases=0), "cache_phases"),
    ],
)
def test_bad_input_gives_a_clear_error(change, message):
    model = make_decoder(make_tiny_config())  # vocab 23, max_len 48.
    args = dict(prompts=np.ones((2, 5), np.int32), prompt_lengths=None, max_new_tokens=4) | change
    with pytest.raises(ValueError, match=message):
        generate(model, args.pop("prompts"), args.pop("prompt_lengths"), **args)
