"""The diffusion sampler of a model (model/diffusion_sampling.py): the cached block sampler
against the whole-row one, no recompiles, and one-line errors (the loop's schedules on fake
models: tests/test_denoise.py)."""

import jax
import numpy as np
import pytest
from conftest import make_tiny_config

from model import diffusion_generate, make_decoder
from model.diffusion_sampling import _diffusion_jit

V, MASK = 13, 4
PROMPTS = np.array([[1, 7, 8, 3, 9], [1, 6, 3, 0, 0], [1, 3, 0, 0, 0]], np.int32)
PROMPT_LENGTHS, TARGET_LENGTHS = [5, 3, 2], [6, 3, 7]


def _tiny_model(kind: str, block_size: int = 1, num_layers: int = 2):
    cfg = make_tiny_config(attention_mask_kind=kind, block_size=block_size, num_layers=num_layers)
    return make_decoder(cfg)


def _sample(model, **kwargs):
    kwargs = dict(num_steps=3, mask_id=MASK, eos_id=2, rng=jax.random.key(3)) | kwargs
    out = diffusion_generate(model, PROMPTS, PROMPT_LENGTHS, TARGET_LENGTHS, **kwargs)
    return np.asarray(out.tokens_BxL), np.asarray(out.lengths_B)


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind, block_size, strategy, num_layers",
    [
        ("block_causal", 2, "ancestral", 1),
        ("block_causal", 2, "confidence", 2),
        ("block_causal", 1, "confidence", 2),
        ("block_causal", 48, "ancestral", 2),  # One block.
        ("prefix_full", 1, "confidence", 2),
    ],
)
def test_the_cached_block_sampler_equals_the_whole_row_sampler(
    kind, block_size, strategy, num_layers, exact_fp32_matmuls
):
    model = _tiny_model(kind, block_size, num_layers)
    for temperature in (0.0, 1.0):
        cached = _sample(model, strategy=strategy, temperature=temperature, use_cache=True)
        whole_row = _sample(model, strategy=strategy, temperature=temperature, use_cache=False)
        np.testing.assert_array_equal(cached[0], whole_row[0])
        np.testing.assert_array_equal(cached[1], whole_row[1])
    tokens, lengths = cached
    np.testing.assert_array_equal(lengths, [12, 7, 10])  # Prompt + target + EOS.
    assert tokens.shape == (3, 5 + 7 + 1)
    assert tokens[0, 11] == tokens[1, 6] == tokens[2, 9] == 2 and np.all(tokens[1, 7:] == 0)
    np.testing.assert_array_equal(tokens[1, :3], PROMPTS[1, :3])
    assert not np.any(tokens == MASK)


@pytest.mark.slow
def test_one_block_covering_the_targets_is_the_prefix_full_sampler():
    one_block = _sample(_tiny_model("block_causal", 7), strategy="ancestral")
    prefix_full = _sample(_tiny_model("prefix_full"), strategy="ancestral")
    np.testing.assert_array_equal(one_block[0], prefix_full[0])


@pytest.mark.slow
def test_new_step_counts_temperatures_and_keys_compile_nothing_new():
    model = _tiny_model("block_causal", 2)
    _sample(model, num_steps=1, temperature=0.0)
    before = _diffusion_jit._cache_size()
    for num_steps, temperature, seed in [(2, 0.5, 1), (5, 1.3, 2), (16, 0.0, 3)]:
        _sample(model, num_steps=num_steps, temperature=temperature, rng=jax.random.key(seed))
    for top_k, top_p in [(3, 1.0), (0, 0.9), (5, 0.5)]:  # Traced too.
        _sample(model, top_k=top_k, top_p=top_p)
    assert _diffusion_jit._cache_size() == before


@pytest.mark.parametrize(
    "kind, change, message",
    [
        ("causal", {}, r"targets see each other within a block .* is 'causal'"),
        ("prefix", {}, "attention_mask_kind is 'prefix'"),
        ("full", dict(num_steps=0), r"num_steps must be an int in \[1, 2147483647\], got 0"),
        ("full", dict(num_steps=2.5), r"num_steps must be an int in \[1, 2147483647\], got 2.5"),
        # An overflow once failed inside numpy, naming no argument.
        ("full", dict(num_steps=10**12), r"num_steps must be an int in \[1, 2147483647\]"),
        # Padding would read as a MASK still to fill.
        ("full", dict(mask_id=0, pad_id=0), r"mask_id and pad_id are both 0"),
        ("full", dict(temperature=-0.5), r"temperature must be a finite number >= 0"),
        ("full", dict(temperature=float("nan")), r"temperature must be a finite number >= 0"),
        (
            "full",
            dict(strategy="greedy"),
            r"strategy must be one of \('ancestral', 'confidence', 'first_hit'\)",
        ),
        ("full", dict(top_p=0.0), r"top_p must be a number in \(0, 1\] \(1: off\), got 0.0"),
        ("full", dict(top_k=-1), r"top_k must be an int >= 0 \(0: off\), got -1"),
        (
            "full",
            dict(use_cache=True),
            r"use_cache=True\) needs a model whose prompt never sees the targets "
            r"\(\('prefix_full', 'block_causal'\)\)",
        ),
        ("full", dict(mask_id=99), r"mask_id must be a token id in \[0, 23\)"),
        ("full", dict(pad_id=-1), r"pad_id must be a token id in \[0, 23\)"),
        ("full", dict(eos_id=23), r"eos_id must be a token id in \[0, 23\) or None"),
        ("full", dict(max_target_len=3), r"max_target_len must be an int >= the longest target"),
        ("full", dict(max_target_len=60), r"do not fit the model's max_len=48"),
        ("full", dict(rng=3), r"rng must be one key"),
    ],
)
def test_bad_input_fails_with_one_line_naming_the_setting(kind, change, message):
    with pytest.raises(ValueError, match=message) as caught:
        _sample(_tiny_model(kind), **change)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "lengths, message",
    [([6, 0, 7], r"target_lengths must be 3 ints >= 1"), ([6.0, 1.0, 2.0], "must be ints")],
)
def test_bad_target_lengths_are_named(lengths, message):
    with pytest.raises(ValueError, match=message):
        diffusion_generate(
            _tiny_model("full"), PROMPTS, PROMPT_LENGTHS, lengths, num_steps=2, mask_id=MASK
        )


@pytest.mark.slow
def test_a_one_block_model_samples_its_own_length_from_its_length_head():
    cfg = make_tiny_config(attention_mask_kind="prefix_full", length_head=True)
    model = make_decoder(cfg)
    kwargs = dict(num_steps=2, mask_id=MASK, eos_id=2, rng=jax.random.key(3), max_target_len=7)
    own = diffusion_generate(model, PROMPTS, PROMPT_LENGTHS, None, **kwargs)
    logits = np.asarray(model.length_logits(PROMPTS, np.array(PROMPT_LENGTHS)))
    allowed = np.where((np.arange(logits.shape[1]) >= 1) & (np.arange(logits.shape[1]) <= 7),
                       logits, -np.inf)  # fmt: skip
    likeliest = allowed.argmax(axis=1)
    np.testing.assert_array_equal(own.lengths_B, np.array(PROMPT_LENGTHS) + likeliest + 1)
    given = diffusion_generate(model, PROMPTS, PROMPT_LENGTHS, likeliest, **kwargs)
    np.testing.assert_array_equal(own.tokens_BxL, given.tokens_BxL)


def _eos_prone_block_model(eos_bias: float):
    """A block model (blocks of 2) whose LM head favours EOS (id 2) by `eos_bias`."""
    model = make_decoder(make_tiny_config(attention_mask_kind="block_causal", block_size=2))
    model.lm_head.bias.value = model.lm_head.bias.value.at[2].set(eos_bias)
    return model


@pytest.mark.slow
def test_a_block_model_ends_each_row_at_the_first_eos_it_writes():
    """BD3-LM's variable length: blocks are sampled until one holds EOS; a row ends there (its
    EOS kept, what follows it dropped), and is the sample of the full width cut at that EOS,
    since no block reads a later one (same key, so the same draws block by block)."""
    model = _eos_prone_block_model(1.5)
    kwargs = dict(num_steps=2, mask_id=MASK, eos_id=2, rng=jax.random.key(5), max_target_len=8)
    own = diffusion_generate(model, PROMPTS, PROMPT_LENGTHS, None, **kwargs)
    full = diffusion_generate(model, PROMPTS, PROMPT_LENGTHS, [8, 8, 8], **kwargs)
    own_tokens, full_tokens = np.asarray(own.tokens_BxL), np.asarray(full.tokens_BxL)
    ended = 0
    for b, prompt_length in enumerate(PROMPT_LENGTHS):
        target = full_tokens[b, prompt_length : prompt_length + 8]
        eos = np.flatnonzero(target == 2)
        if eos.size:  # Ends at its first EOS: the full sample up to it, then padding.
            ended += 1
            end = prompt_length + eos[0] + 1
            assert own.lengths_B[b] == end
            np.testing.assert_array_equal(own_tokens[b, :end], full_tokens[b, :end])
            assert np.all(own_tokens[b, end:] == 0)
        else:  # Wrote none: fills the room, with no EOS after it.
            assert own.lengths_B[b] == prompt_length + 8
            np.testing.assert_array_equal(own_tokens[b, : prompt_length + 8], full_tokens[b, :-1])
    assert ended >= 2, "the test needs rows that end at an EOS"


def test_blocks_stop_once_every_row_has_ended():
    """Every row writes EOS in its first block: one block is sampled, not four, and the call
    count per block is of that block's steps."""
    model = _eos_prone_block_model(30.0)
    kwargs = dict(num_steps=2, mask_id=MASK, eos_id=2, rng=jax.random.key(5), max_target_len=8)
    own = diffusion_generate(model, PROMPTS, PROMPT_LENGTHS, None, **kwargs)
    np.testing.assert_array_equal(own.lengths_B, np.array(PROMPT_LENGTHS) + 1)  # EOS first.
    np.testing.assert_array_equal(own.calls_per_block_B, [2, 2, 2])
    with pytest.raises(ValueError, match="give eos_id"):
        diffusion_generate(model, PROMPTS, PROMPT_LENGTHS, None, num_steps=2, mask_id=MASK)
