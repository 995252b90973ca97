"""Exact parallel decoding (model/speculative.py): speculative, Jacobi and prompt-lookup decoding
give greedy `generate`'s tokens, and speculative sampling draws from the target's distribution."""

import itertools
import math

import jax
import numpy as np
import pytest
from conftest import make_tiny_config

from model import generate, make_decoder
from model.drafts import NgramDraft
from model.parallel_loop import run_rounds
from model.speculative import (
    jacobi_generate,
    prompt_lookup_generate,
    speculative_generate,
)
from model.verify import verify

V, EOS, MASK = 23, 5, 4
PROMPT_LENGTHS = np.array([6, 3, 1, 4, 6, 2])  # Mixed lengths; the 1-token row starts at once.


@pytest.fixture(scope="module")
def target():
    return make_decoder(make_tiny_config(vocab_size=V, max_len=40), 0)


@pytest.fixture(scope="module")
def prompts():
    return np.random.default_rng(0).integers(6, V, (len(PROMPT_LENGTHS), 6))


@pytest.fixture(scope="module")
def greedy(target, prompts):
    out = generate(target, prompts, PROMPT_LENGTHS, max_new_tokens=20, eos_id=EOS)
    # EOS ends some rows early and not others: both paths are exercised.
    lengths = np.asarray(out.lengths_B) - PROMPT_LENGTHS
    assert lengths.min() < 20 and lengths.max() == 20
    return out


def _assert_same(out, reference):
    np.testing.assert_array_equal(np.asarray(out.tokens_BxL), np.asarray(reference.tokens_BxL))
    np.testing.assert_array_equal(np.asarray(out.lengths_B), np.asarray(reference.lengths_B))


def test_greedy_speculative_equals_greedy_with_a_random_draft(target, prompts, greedy):
    draft = make_decoder(make_tiny_config(vocab_size=V, max_len=40, num_layers=1), 1)
    out = speculative_generate(
        target, draft, prompts, PROMPT_LENGTHS, num_draft_tokens=4, max_new_tokens=20, eos_id=EOS
    )
    _assert_same(out, greedy)
    generated = np.asarray(greedy.lengths_B) - PROMPT_LENGTHS
    # A random draft is rarely right: about one target pass per token.
    assert np.all(np.asarray(out.target_passes_B) >= generated - np.asarray(out.accepted_B))
    assert np.asarray(out.accepted_B).sum() < np.asarray(out.drafted_B).sum() / 4


@pytest.mark.slow
def test_greedy_speculative_with_the_target_as_draft_accepts_everything(target, prompts, greedy):
    out = speculative_generate(
        target, target, prompts, PROMPT_LENGTHS, num_draft_tokens=4, max_new_tokens=20, eos_id=EOS
    )
    _assert_same(out, greedy)
    generated = np.asarray(greedy.lengths_B) - PROMPT_LENGTHS
    # Every draft is kept, so each pass adds 5 tokens: 1 (prefill) + ceil((n - 1) / 5) passes.
    np.testing.assert_array_equal(out.target_passes_B, 1 + -(-(generated - 1) // 5))
    np.testing.assert_array_equal(out.accepted_B, out.drafted_B)


@pytest.mark.slow
def test_greedy_speculative_equals_greedy_with_a_cmlm_draft(target, prompts, greedy):
    cmlm = make_decoder(
        make_tiny_config(vocab_size=V, max_len=40, attention_mask_kind="prefix_full"), 2
    )
    out = speculative_generate(
        target, cmlm, prompts, PROMPT_LENGTHS, num_draft_tokens=3, max_new_tokens=20,
        eos_id=EOS, draft_mask_id=MASK, target_lengths_B=np.array([5, 9, 19, 3, 1, 20]),
    )  # fmt: skip
    _assert_same(out, greedy)


@pytest.mark.slow
def test_jacobi_equals_greedy_in_at_most_one_pass_per_token(target, prompts, greedy):
    for block_size in (2, 5):
        out = jacobi_generate(
            target, prompts, PROMPT_LENGTHS, block_size=block_size, max_new_tokens=20, eos_id=EOS
        )
        _assert_same(out, greedy)
        generated = np.asarray(greedy.lengths_B) - PROMPT_LENGTHS
        assert np.all(np.asarray(out.target_passes_B) <= generated)


@pytest.mark.slow
def test_prompt_lookup_equals_greedy_in_at_most_one_pass_per_token(target, prompts, greedy):
    generated = np.asarray(greedy.lengths_B) - PROMPT_LENGTHS
    accepted = 0
    for ngram_size in (1, 2, 3):
        out = prompt_lookup_generate(
            target, prompts, PROMPT_LENGTHS, num_draft_tokens=4, ngram_size=ngram_size,
            max_new_tokens=20, eos_id=EOS,
        )  # fmt: skip
        _assert_same(out, greedy)
        assert np.all(np.asarray(out.target_passes_B) <= generated)
        accepted += int(np.asarray(out.accepted_B).sum())
    assert accepted > 0  # Some rows repeat themselves, and their drafts are kept.


def test_ngram_draft_continues_the_latest_earlier_occurrence():
    rows = np.array(
        [
            [9, 7, 8, 6, 7, 8, 5, 7, 8, 0, 0, 0],  # "7 8" last seen before at 4: then 5.
            [7, 8, 6, 6, 7, 8, 0, 0, 0, 0, 0, 0],  # At 0, period 4: 6 6 7 8, then again.
            [1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0],  # No earlier "3 4": the last token again.
        ]
    )
    drafts, q, _ = NgramDraft(num_tokens=6, vocab_size=10, ngram_size=2).propose(
        (), rows, np.array([9, 6, 4]), None
    )
    np.testing.assert_array_equal(
        drafts, [[5, 7, 8, 5, 7, 8], [6, 6, 7, 8, 6, 6], [4, 4, 4, 4, 4, 4]]
    )
    np.testing.assert_array_equal(q, jax.nn.one_hot(drafts, 10))


@pytest.mark.slow
def test_sampling_params_and_prompts_never_recompile(target, prompts):
    draft = make_decoder(make_tiny_config(vocab_size=V, max_len=40, num_layers=1), 1)
    kwargs = dict(num_draft_tokens=2, max_new_tokens=8, eos_id=EOS)
    speculative_generate(target, draft, prompts, PROMPT_LENGTHS, **kwargs)
    before = run_rounds._cache_size()
    for temperature, top_k, top_p, seed in ((0.7, 0, 1.0, 1), (1.3, 4, 0.9, 2), (0.0, 3, 0.5, 3)):
        speculative_generate(
            target, draft, (prompts + seed) % V, PROMPT_LENGTHS, temperature=temperature,
            top_k=top_k, top_p=top_p, rng=jax.random.key(seed), **kwargs,
        )  # fmt: skip
    assert run_rounds._cache_size() == before


@pytest.mark.slow
def test_verify_keeps_the_drafts_equal_to_the_argmax_then_the_argmax():
    p = jax.nn.one_hot(np.array([[3, 1, 4, 2]]), 6)  # The target's greedy tokens.
    q = jax.nn.one_hot(np.array([[3, 1, 0]]), 6)
    accepted, next_token = verify(p, q, np.array([[3, 1, 0]]), jax.random.split(jax.random.key(0)))
    assert int(accepted[0]) == 2 and int(next_token[0]) == 4


# Sampling: small vocabulary, continuations of 3 tokens, so the exact distribution of every
# continuation is computed by enumeration (teacher-forced logits of all 6^3 of them).
SAMPLED_V, SAMPLED_NEW, SAMPLES = 6, 3, 20_000


def _peaked_model(seed: int, scale: float):
    """A random tiny model whose next-token distributions are `scale` times sharper (logits)."""
    model = make_decoder(make_tiny_config(vocab_size=SAMPLED_V, max_len=12), seed)
    model.lm_head.kernel[...] = model.lm_head.kernel[...] * scale
    return model


def _continuation_probs(model, prompt) -> np.ndarray:
    """P(continuation) of every continuation of SAMPLED_NEW tokens, in itertools.product order."""
    conts = np.array(list(itertools.product(range(SAMPLED_V), repeat=SAMPLED_NEW)))
    rows = np.concatenate([np.tile(prompt, (len(conts), 1)), conts], axis=1)
    logits, _ = model(rows[:, :-1])
    log_probs = jax.nn.log_softmax(np.asarray(logits), axis=-1)
    P = len(prompt)
    picked = np.take_along_axis(np.asarray(log_probs)[:, P - 1 :], conts[..., None], axis=-1)
    return np.exp(picked[..., 0].sum(axis=1))


def _empirical_and_bound(out, prompt, p_exact) -> tuple[np.ndarray, float]:
    """The sampled continuations' empirical distribution, and the TV bound it must meet.

    Bound: E[TV] <= 1/2 sum_k sqrt(p_k / N) (Jensen), and TV moves by at most 1/N per sample,
    so McDiarmid puts TV above E[TV] + sqrt(ln(1e6) / 2N) with probability below 1e-6.
    """
    conts = np.asarray(out.tokens_BxL)[:, len(prompt) :]
    index = (conts * SAMPLED_V ** np.arange(SAMPLED_NEW)[::-1]).sum(axis=1)
    empirical = np.bincount(index, minlength=SAMPLED_V**SAMPLED_NEW) / SAMPLES
    bound = 0.5 * np.sqrt(p_exact / SAMPLES).sum() + math.sqrt(math.log(1e6) / (2 * SAMPLES))
    return empirical, bound


@pytest.mark.slow
def test_speculative_sampling_draws_from_the_target_not_the_draft():
    # A target spread over many continuations (entropy 3.2 nats of ln 216 = 5.4), and a draft
    # that agrees with it often enough for both acceptances and rejections (about 40% kept).
    target, draft = _peaked_model(10, 3.0), _peaked_model(11, 1.0)
    prompt = np.array([1, 4, 2, 5])
    p_exact, q_exact = _continuation_probs(target, prompt), _continuation_probs(draft, prompt)
    out = speculative_generate(
        target, draft, np.tile(prompt, (SAMPLES, 1)), num_draft_tokens=2,
        max_new_tokens=SAMPLED_NEW, temperature=1.0, rng=jax.random.key(0),
    )  # fmt: skip
    empirical, bound = _empirical_and_bound(out, prompt, p_exact)
    tv = 0.5 * np.abs(empirical - p_exact).sum()
    assert tv < bound, (tv, bound)
    # The same test has the power to reject the draft's distribution.
    assert 0.5 * np.abs(empirical - q_exact).sum() > bound
    assert 0 < np.asarray(out.accepted_B).sum() < np.asarray(out.drafted_B).sum()


@pytest.mark.slow
def test_prompt_lookup_sampling_draws_from_the_model():
    # The n-gram draft is deterministic (one-hot q): verification keeps the target's
    # distribution, with drafts both kept and rejected.
    target = _peaked_model(10, 3.0)
    prompt = np.array([1, 4, 2, 5])
    p_exact = _continuation_probs(target, prompt)
    out = prompt_lookup_generate(
        target, np.tile(prompt, (SAMPLES, 1)), num_draft_tokens=2, ngram_size=1,
        max_new_tokens=SAMPLED_NEW, temperature=1.0, rng=jax.random.key(1),
    )  # fmt: skip
    empirical, bound = _empirical_and_bound(out, prompt, p_exact)
    assert 0.5 * np.abs(empirical - p_exact).sum() < bound
    assert 0 < np.asarray(out.accepted_B).sum() < np.asarray(out.drafted_B).sum()


def test_bad_arguments_fail_with_a_sentence(target, prompts):
    cmlm = make_decoder(make_tiny_config(vocab_size=V, max_len=40, attention_mask_kind="full"), 3)
    small = make_decoder(make_tiny_config(vocab_size=V + 1, max_len=40), 3)
    kwargs = dict(max_new_tokens=4)
    with pytest.raises(ValueError, match="vocabulary"):
        speculative_generate(target, small, prompts, num_draft_tokens=2, **kwargs)
    with pytest.raises(ValueError, match="AR model"):
        speculative_generate(target, cmlm, prompts, num_draft_tokens=2, **kwargs)
    with pytest.raises(ValueError, match="AR model"):
        speculative_generate(cmlm, target, prompts, num_draft_tokens=2, **kwargs)
    with pytest.raises(ValueError, match="num_draft_tokens"):
        speculative_generate(target, target, prompts, num_draft_tokens=0, **kwargs)
    with pytest.raises(ValueError, match="block_size"):
        jacobi_generate(target, prompts, block_size=1, **kwargs)
    with pytest.raises(ValueError, match="ngram_size"):
        prompt_lookup_generate(target, prompts, num_draft_tokens=2, ngram_size=0, **kwargs)
    with pytest.raises(ValueError, match="AR model"):
        prompt_lookup_generate(cmlm, prompts, num_draft_tokens=2, **kwargs)
    with pytest.raises(ValueError, match="does not fit"):
        jacobi_generate(target, prompts, block_size=3, max_new_tokens=36)
