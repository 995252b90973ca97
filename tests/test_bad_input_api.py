"""The bad-input battery of the Python API: every case raises a ValueError (on the host, before
any tracing) that names the argument; command-line cases are in test_bad_input.py."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import make_tiny_config

from data import vocab
from model import (
    beam_search,
    diffusion_generate,
    generate,
    generate_no_cache,
    jacobi_generate,
    make_decoder,
    mask_predict,
    prompt_lookup_generate,
    speculative_generate,
)

PROMPTS = np.ones((2, 5), np.int32)


@pytest.fixture(scope="module")
def model():
    return make_decoder(make_tiny_config())  # vocab 23, max_len 48.


@pytest.fixture(scope="module")
def cmlm():
    return make_decoder(make_tiny_config(attention_mask_kind="prefix_full"))


BAD_GENERATE = {
    "NaN temperature": (dict(temperature=float("nan")), "temperature"),
    "infinite temperature": (dict(temperature=float("inf")), "temperature"),
    "fractional top_k": (dict(top_k=2.5), "top_k"),
    "NaN top_p": (dict(top_p=float("nan")), "top_p"),
    "fractional prompt lengths": (dict(prompt_lengths=[3.0, 2.5]), "prompt_lengths"),
    "an empty batch": (dict(prompts=np.zeros((0, 5), np.int32)), "at least one row"),
    "an int for rng": (dict(rng=0), "rng"),
    "a batch of keys for rng": (dict(rng=jax.random.split(jax.random.key(0), 2)), "rng"),
    "a bool for max_new_tokens": (dict(max_new_tokens=True), "max_new_tokens"),
    "a float eos_id": (dict(eos_id=2.0), "eos_id"),
}


@pytest.mark.parametrize("case", BAD_GENERATE)
def test_generate_refuses_bad_arguments_on_the_host(model, case):
    change, message = BAD_GENERATE[case]
    args = dict(prompts=np.ones((2, 5), np.int32), prompt_lengths=None, max_new_tokens=4) | change
    with pytest.raises(ValueError, match=message):
        generate(model, args.pop("prompts"), args.pop("prompt_lengths"), **args)


def test_generate_takes_legacy_keys_too(model):
    out = generate(model, np.ones((2, 5), np.int32), max_new_tokens=2, rng=jax.random.PRNGKey(0))
    assert out.tokens_BxL.shape == (2, 7)


def test_mask_predict_refuses_fractional_target_lengths():
    cmlm = make_decoder(make_tiny_config(attention_mask_kind="prefix_full"))
    with pytest.raises(ValueError, match="target_lengths must be ints"):
        mask_predict(cmlm, np.ones((2, 3), np.int32), [3, 3], [2.0, 1.5], num_iterations=2,
                     mask_id=vocab.MASK)  # fmt: skip


@pytest.mark.parametrize("token", [23, -1])
def test_the_decoder_called_eagerly_refuses_ids_outside_the_vocabulary(model, token):
    tokens = jnp.asarray([[1, 5, token]])
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 23\)"):
        model(tokens)


# Each decoder that takes token ids, called on 2 prompts of 5 tokens with 4 new ones.
DECODERS = {
    "generate": lambda ar, cmlm, **kw: generate(ar, PROMPTS, max_new_tokens=4, **kw),
    "generate_no_cache": lambda ar, cmlm, **kw: generate_no_cache(
        ar, PROMPTS, max_new_tokens=4, **kw
    ),
    "beam_search": lambda ar, cmlm, **kw: beam_search(
        ar, PROMPTS, beam_size=2, max_new_tokens=4, **kw
    ),
    "speculative_generate": lambda ar, cmlm, **kw: speculative_generate(
        ar, ar, PROMPTS, num_draft_tokens=2, max_new_tokens=4, **kw
    ),
    "speculative_generate, CMLM draft": lambda ar, cmlm, **kw: speculative_generate(
        ar, cmlm, PROMPTS, num_draft_tokens=2, max_new_tokens=4, draft_mask_id=vocab.MASK, **kw
    ),
    "jacobi_generate": lambda ar, cmlm, **kw: jacobi_generate(
        ar, PROMPTS, block_size=3, max_new_tokens=4, **kw
    ),
    "prompt_lookup_generate": lambda ar, cmlm, **kw: prompt_lookup_generate(
        ar, PROMPTS, num_draft_tokens=2, max_new_tokens=4, **kw
    ),
    "mask_predict": lambda ar, cmlm, **kw: mask_predict(
        cmlm, PROMPTS, [5, 5], [3, 3], num_iterations=2, mask_id=vocab.MASK, **kw
    ),
    "diffusion_generate": lambda ar, cmlm, **kw: diffusion_generate(
        cmlm, PROMPTS, [5, 5], [3, 3], num_steps=2, mask_id=vocab.MASK, **kw
    ),
}
BAD_IDS = {  # The vocabulary is [0, 23).
    "pad_id past the vocabulary": (dict(pad_id=999), r"pad_id must be a token id in \[0, 23\)"),
    "negative pad_id": (dict(pad_id=-1), "pad_id"),
    "eos_id = vocab_size": (dict(eos_id=23), r"eos_id must be a token id in \[0, 23\) or None"),
    "negative eos_id": (dict(eos_id=-1), "eos_id"),
}


@pytest.mark.parametrize("case", BAD_IDS)
@pytest.mark.parametrize("decoder", DECODERS)
def test_every_decoder_refuses_token_ids_outside_the_vocabulary(model, cmlm, decoder, case):
    change, message = BAD_IDS[case]
    with pytest.raises(ValueError, match=message):
        DECODERS[decoder](model, cmlm, **change)


@pytest.mark.parametrize("mask_id", [999, 23, -1])
def test_mask_predict_refuses_a_mask_id_outside_the_vocabulary(cmlm, mask_id):
    with pytest.raises(ValueError, match=r"mask_id must be a token id in \[0, 23\)"):
        mask_predict(cmlm, PROMPTS, [5, 5], [3, 3], num_iterations=2, mask_id=mask_id)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(draft_mask_id=999), r"draft_mask_id must be a token id in \[0, 23\)"),
        (dict(draft_mask_id=-1), "draft_mask_id"),
        (dict(target_lengths_B=[3, -1]), r"target_lengths must be 2 ints >= 0, got \[3, -1\]"),
    ],
    ids=["draft_mask_id past the vocabulary", "negative draft_mask_id", "a negative length"],
)
def test_a_cmlm_draft_refuses_a_bad_mask_id_and_negative_target_lengths(
    model, cmlm, change, message
):
    args = dict(num_draft_tokens=2, max_new_tokens=4, draft_mask_id=vocab.MASK) | change
    with pytest.raises(ValueError, match=message):
        speculative_generate(model, cmlm, PROMPTS, **args)


def test_draft_sizes_that_cannot_fit_are_refused(model):
    """Rows hold P + max_new_tokens = 9 tokens here, and never more than max_len + 1 = 49."""
    lookup = functools.partial(prompt_lookup_generate, model, PROMPTS, max_new_tokens=4)
    for ngram_size in (50, 9, 0, -1):  # 50 raised a TypeError from inside JAX.
        with pytest.raises(ValueError, match=f"ngram_size.*got {ngram_size}$"):
            lookup(num_draft_tokens=2, ngram_size=ngram_size)
    with pytest.raises(ValueError, match=r"num_draft_tokens must be an int in \[1, 47\]"):
        lookup(num_draft_tokens=48)
    with pytest.raises(ValueError, match=r"num_draft_tokens must be an int in \[1, 47\]"):
        speculative_generate(model, model, PROMPTS, num_draft_tokens=48, max_new_tokens=4)
    with pytest.raises(ValueError, match=r"block_size must be an int in \[2, 48\]"):
        jacobi_generate(model, PROMPTS, block_size=49, max_new_tokens=4)


@pytest.mark.parametrize("mask_kind", ["full", "prefix_full"])
def test_beam_search_refuses_a_model_whose_cache_is_not_exact(mask_kind):
    """Its cache is exact only for causal and prefix attention, as speculative decoding's is."""
    full = make_decoder(make_tiny_config(attention_mask_kind=mask_kind))
    with pytest.raises(ValueError, match=f"must be an AR model.*{mask_kind!r}"):
        beam_search(full, PROMPTS, beam_size=2, max_new_tokens=4, eos_id=vocab.EOS)


@pytest.mark.slow
def test_beam_search_without_eos_runs_every_beam_to_max_new_tokens(model):
    prompts = np.random.default_rng(0).integers(5, 23, (3, 5))
    lengths = np.array([5, 2, 4])
    greedy = generate(model, prompts, lengths, max_new_tokens=6)
    one = beam_search(model, prompts, lengths, beam_size=1, max_new_tokens=6, length_penalty=0.0)
    np.testing.assert_array_equal(one.tokens_BxKxL[:, 0], greedy.tokens_BxL)
    wide = beam_search(model, prompts, lengths, beam_size=3, max_new_tokens=6, eos_id=None)
    np.testing.assert_array_equal(wide.lengths_BxK, np.repeat(lengths[:, None] + 6, 3, axis=1))
    assert np.isfinite(np.asarray(wide.scores_BxK)).all()
