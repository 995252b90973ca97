"""model/encoder_decoder.py: cache == forward, greedy with and without a cache, leakage of the
decoder's self-attention, and cross-attention keys and values computed once per prompt."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import make_tiny_config
from flax import nnx

from evaluation import leakage
from model import (
    ModelConfig,
    beam_search,
    generate,
    generate_no_cache,
    grow_cache,
    init_cache,
    make_decoder,
    mask_predict,
    speculative_generate,
)
from model.sampling import _generate_jit

T = 14


@nnx.jit
def forward(model, tokens_BxT, **kwargs):
    return model(tokens_BxT, **kwargs)


def enc_dec_config(**overrides) -> ModelConfig:
    return make_tiny_config(architecture="encoder_decoder", **overrides)


def _tokens(cfg, shape, seed=0):
    return jax.random.randint(jax.random.key(seed), shape, 5, cfg.vocab_size)


def test_a_call_without_prefix_lengths_is_a_clear_error():
    model = make_decoder(enc_dec_config())
    with pytest.raises(ValueError, match="needs prefix_lengths"):
        model(np.full((1, 4), 5, np.int32))


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_cache_equals_full_forward_with_mixed_source_and_target_lengths(dtype, exact_fp32_matmuls):
    on_cpu = jax.default_backend() == "cpu"
    atol = 1e-5 if dtype == "float32" else (1e-3 if on_cpu else 3e-2)
    cfg = enc_dec_config(dtype=dtype)
    model = make_decoder(cfg)
    B, P = 3, 6
    tokens_BxT = _tokens(cfg, (B, T), seed=1)
    source_lengths_B = jnp.array([2, 6, 4])  # `BOS source SEP` lengths.
    lengths_B = jnp.array([9, 14, 11])  # Targets of 7, 8 and 7 tokens.
    full_BxTxV, _ = forward(
        model, tokens_BxT, lengths_B=lengths_B, prefix_lengths_B=source_lengths_B
    )
    cache = init_cache(cfg, B, P)
    prompts_BxP = jnp.where(jnp.arange(P)[None] < source_lengths_B[:, None], tokens_BxT[:, :P], 0)
    prefill_BxPxV, cache = forward(
        model, prompts_BxP, lengths_B=source_lengths_B, prefix_lengths_B=source_lengths_B,
        cache=cache,
    )  # fmt: skip
    last_B = source_lengths_B - 1  # SEP: the decoder's first input.
    rows_B = jnp.arange(B)
    np.testing.assert_allclose(prefill_BxPxV[rows_B, last_B], full_BxTxV[rows_B, last_B], atol=atol)
    for i in range(int((lengths_B - source_lengths_B).max())):
        if int(cache.index) == cache.key_positions_BxS.shape[1]:
            cache = grow_cache(cache, int(cache.index) + 3)
        positions_B = jnp.minimum(source_lengths_B + i, T - 1)
        step_Bx1xV, cache = forward(
            model,
            tokens_BxT[rows_B, positions_B][:, None],
            positions_BxT=positions_B[:, None],
            prefix_lengths_B=source_lengths_B,
            cache=cache,
        )
        scored_B = np.asarray(source_lengths_B + i < lengths_B)
        np.testing.assert_allclose(
            np.asarray(step_Bx1xV[:, 0])[scored_B],
            np.asarray(full_BxTxV[rows_B, positions_B])[scored_B],
            atol=atol,
        )


def _prompts(cfg, B=4, P=7, seed=3):
    prompts_BxP = np.array(_tokens(cfg, (B, P), seed))
    lengths_B = np.array([3, 7, 5, 2][:B], np.int32)
    prompts_BxP[np.arange(B), lengths_B - 1] = 3  # SEP ends each prompt.
    return prompts_BxP, lengths_B


@pytest.mark.slow
def test_greedy_with_cache_equals_without_it_with_eos(exact_fp32_matmuls):
    cfg = enc_dec_config(vocab_size=9)  # A small vocabulary: rows emit EOS (id 2) early.
    model = make_decoder(cfg, seed=2)
    prompts_BxP, lengths_B = _prompts(cfg)
    kwargs = dict(max_new_tokens=12, eos_id=2)
    cached = generate(model, prompts_BxP, lengths_B, **kwargs)
    honest = generate_no_cache(model, prompts_BxP, lengths_B, **kwargs)
    np.testing.assert_array_equal(cached.tokens_BxL, honest.tokens_BxL)
    np.testing.assert_array_equal(cached.lengths_B, honest.lengths_B)
    assert int(np.asarray(cached.lengths_B).min()) < int(lengths_B.min()) + 12  # Some EOS.
    # Without the cross-attention cache: the same function, its K/V projected at every step.
    recomputed = make_decoder(dataclasses.replace(cfg, cross_kv_cache=False), seed=2)
    again = generate(recomputed, prompts_BxP, lengths_B, **kwargs)
    np.testing.assert_array_equal(cached.tokens_BxL, again.tokens_BxL)


def _seq2seq_batch(cfg, seed=0):
    """Rows `BOS source SEP target EOS` of mixed lengths, as data/batching.py builds them."""
    from data import batching

    rng = np.random.default_rng(seed)
    source_lengths, target_lengths = np.array([3, 5, 2, 4]), np.array([5, 3, 6, 4])
    source = rng.integers(5, cfg.vocab_size, (4, 5))
    target = rng.integers(5, cfg.vocab_size, (4, 6))
    return batching.seq2seq_batch(
        source, source_lengths, target, target_lengths, seq_len=12, loss_on="target"
    )


@pytest.mark.parametrize("kind", ["causal", "full"])
def test_perturbation_leakage_of_the_decoder(kind):
    model = make_decoder(enc_dec_config(attention_mask_kind=kind))
    value = leakage.perturbation_leakage(model, _seq2seq_batch(model.cfg), num_positions=4)
    if kind == "causal":
        assert value == 0.0
    else:
        assert value > 1e-4


def test_a_source_token_reaches_every_target_position():
    cfg = enc_dec_config()
    model = make_decoder(cfg)
    batch = _seq2seq_batch(cfg)
    inputs_BxT = batch["inputs"]
    args = dict(lengths_B=batch["lengths"], prefix_lengths_B=batch["prefix_lengths"])
    base_BxTxV, _ = forward(model, inputs_BxT, **args)
    changed_BxT = inputs_BxT.copy()
    changed_BxT[:, 1] = 5 + (changed_BxT[:, 1] - 4) % (
        cfg.vocab_size - 5
    )  # The first source token.
    moved_BxTxV, _ = forward(model, changed_BxT, **args)
    delta_BxT = np.abs(np.asarray(moved_BxTxV - base_BxTxV)).max(axis=-1)
    for b in range(4):
        scored = slice(batch["prefix_lengths"][b] - 1, batch["lengths"][b])
        assert (delta_BxT[b, scored] > 0).all()


def _dot_generals(jaxpr, inside_loop=False, found=None):
    """(rhs shape, inside a while loop) of every dot_general in `jaxpr`, nested ones included."""
    found = [] if found is None else found
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            found.append((tuple(eqn.invars[1].aval.shape), inside_loop))
        for sub in jax.core.jaxprs_in_params(eqn.params):
            _dot_generals(sub, inside_loop or eqn.primitive.name == "while", found)
    return found


@pytest.mark.parametrize("cross_kv_cache", [True, False])
def test_cross_attention_keys_and_values_are_computed_once_per_call(cross_kv_cache):
    """Counts the cross-attention K/V projections (the only [D, 2D] weight) in the program."""
    cfg = enc_dec_config(cross_kv_cache=cross_kv_cache, d_ff=96)  # Not 2 d_model: ambiguous.
    assert cfg.d_ff != 2 * cfg.d_model
    graphdef, state = nnx.split(make_decoder(cfg))
    prompts_BxP, lengths_B = _prompts(cfg)
    args = (jnp.float32(0), jnp.int32(0), jnp.float32(1))

    def program(prompts_BxP, lengths_B):
        return _generate_jit(
            graphdef, state, prompts_BxP, lengths_B, jax.random.key(0), args, jnp.int32(-1),
            max_new_tokens=10, use_cache=True, cache_phases=2, pad_id=0,
        )  # fmt: skip

    jaxpr = jax.make_jaxpr(program)(prompts_BxP, lengths_B).jaxpr
    kv_projections = [inside for shape, inside in _dot_generals(jaxpr) if shape == (32, 64)]
    if cross_kv_cache:  # Once per layer, in the prefill; never in the decode loops.
        assert kv_projections == [False] * cfg.num_layers
    else:  # Control: the count sees projections made at every step.
        assert kv_projections.count(True) == 2 * cfg.num_layers  # Two phases, two loop bodies.


@pytest.mark.slow
def test_every_decoder_runs_on_an_encoder_decoder(exact_fp32_matmuls):
    cfg = enc_dec_config()
    model = make_decoder(cfg, seed=1)
    prompts_BxP, lengths_B = _prompts(cfg)
    greedy = generate(model, prompts_BxP, lengths_B, max_new_tokens=8)
    beam = beam_search(
        model, prompts_BxP, lengths_B, beam_size=1, max_new_tokens=8, eos_id=2, length_penalty=0.0
    )
    np.testing.assert_array_equal(beam.tokens_BxKxL[:, 0], greedy.tokens_BxL)
    wide = beam_search(model, prompts_BxP, lengths_B, beam_size=3, max_new_tokens=8, eos_id=2)
    assert np.isfinite(np.asarray(wide.scores_BxK[:, 0])).all()
    spec = speculative_generate(
        model, model, prompts_BxP, lengths_B, num_draft_tokens=3, max_new_tokens=8
    )
    np.testing.assert_array_equal(spec.tokens_BxL, greedy.tokens_BxL)
    full = make_decoder(enc_dec_config(attention_mask_kind="full", length_head=True))
    out = mask_predict(
        full, prompts_BxP, lengths_B, np.array([3, 5, 2, 4]), num_iterations=2, mask_id=4
    )
    assert np.asarray(out.tokens_BxL).shape[0] == 4
    predicted = mask_predict(
        full, prompts_BxP, lengths_B, None, num_iterations=2, mask_id=4, max_target_len=6
    )
    assert np.asarray(predicted.lengths_B).shape == (4,)


def test_the_decoder_counts_positions_from_its_sep_whatever_the_source_length():
    # The same `SEP target` after sources of 1 and 4 tokens: under "target" its decoder inputs
    # are the token embeddings plus positions 0, 1, ...; under "row" they move with the source.
    sep_target = [3, 9, 10, 11]
    tokens = np.array([[1, 7, *sep_target, 0, 0, 0], [1, 7, 8, 5, 6, *sep_target]], np.int32)
    prefix_lengths = jnp.array([3, 6])  # `BOS source SEP`.
    positions = jnp.broadcast_to(jnp.arange(9), (2, 9))
    for decoder_positions, same in (("target", True), ("row", False)):
        model = make_decoder(enc_dec_config(decoder_positions=decoder_positions))
        inputs = np.asarray(
            model.decoder_inputs(model.embed(tokens, positions), positions, prefix_lengths)
        )
        first, second = inputs[0, 2:6], inputs[1, 5:9]
        assert np.allclose(first, second, atol=1e-6) == same
        if same:
            expected = model.token_embed(jnp.array(sep_target)) + model.position_embed(
                jnp.arange(4)
            )
            np.testing.assert_allclose(first, expected, atol=1e-6)


def test_source_copy_feeds_each_target_mask_the_uniformly_assigned_source_word():
    # Sources of 5 and 2 words (between BOS=1 and SEP=3), then 3 and 4 MASKs (4) and EOS (2).
    # The EOS slot counts as a target slot, as training sees rows: T = 4 and 5. Slot j takes
    # word round(j (S - 1) / (T - 1)), half to even as torch.round: 0, 4/3, 8/3 -> 0, 1, 3;
    # 0, 1/4, 1/2, 3/4 -> 0, 0, 0, 1.
    cfg = enc_dec_config(source_copy_id=4, max_len=16)
    copier = make_decoder(cfg, seed=5)
    plain = nnx.merge(nnx.graphdef(make_decoder(dataclasses.replace(cfg, source_copy_id=-1))),
                      nnx.state(copier))  # fmt: skip
    masked = np.array([[1, 11, 12, 13, 14, 15, 3, 4, 4, 4, 2, 0],
                       [1, 21, 22, 3, 4, 4, 4, 4, 2, 0, 0, 0]], np.int32)  # fmt: skip
    copied = np.array([[1, 11, 12, 13, 14, 15, 3, 11, 12, 14, 2, 0],
                       [1, 21, 22, 3, 21, 21, 21, 22, 2, 0, 0, 0]], np.int32)  # fmt: skip
    kwargs = dict(lengths_B=jnp.array([11, 9]), prefix_lengths_B=jnp.array([7, 4]))
    positions = jnp.broadcast_to(jnp.arange(12), (2, 12))
    np.testing.assert_array_equal(
        copier.copy_source(jnp.asarray(masked), jnp.asarray(masked), kwargs["prefix_lengths_B"],
                           positions, kwargs["lengths_B"], kwargs["prefix_lengths_B"]),
        copied,
    )  # fmt: skip
    np.testing.assert_allclose(
        forward(copier, masked, **kwargs)[0], forward(plain, copied, **kwargs)[0], atol=1e-6
    )


def test_source_copy_needs_an_encoder():
    with pytest.raises(ValueError, match="source_copy_id copies the source"):
        make_decoder(make_tiny_config(source_copy_id=4))
