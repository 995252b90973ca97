"""Beam search (model/beam.py): beam 1 is greedy, it finds what greedy misses, and a beam as wide
as every sequence returns the exact best one (checked by enumeration)."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import make_tiny_config

from model import beam_loop, beam_search, generate, make_decoder
from model.beam import length_penalty

EOS = 0


def _table_model(table_TxVxV: np.ndarray):
    """A fake model: the logits after token v at position t are table[t, v]."""
    table = jnp.asarray(table_TxVxV)

    def step_fn(tokens_RxL, positions_R, state):
        last_R = jnp.take_along_axis(tokens_RxL, positions_R[:, None], axis=1)[:, 0]
        return table[positions_R, last_R], state

    return step_fn


def _run(table, beam_size, max_new_tokens, alpha=0.0):
    """Beam search after the one-token prompt [1], on the table model."""
    tokens_1xL = jnp.zeros((1, 1 + max_new_tokens), jnp.int32).at[0, 0].set(1)
    return beam_loop(
        _table_model(table),
        lambda state, rows: state,
        None,
        jnp.asarray(table)[0, 1][None],
        tokens_1xL,
        jnp.array([1]),
        beam_size=beam_size,
        max_new_tokens=max_new_tokens,
        eos_id=EOS,
        alpha=alpha,
    )


@pytest.mark.slow
def test_beam_one_equals_greedy_with_mixed_prompt_lengths_and_eos():
    model = make_decoder(make_tiny_config(), seed=3)
    rng = np.random.default_rng(0)
    prompts = rng.integers(5, 23, (4, 6)).astype(np.int32)
    lengths = np.array([6, 2, 4, 1])
    free = generate(model, prompts, lengths, max_new_tokens=10)
    eos = int(free.tokens_BxL[0, 6 + 2])  # A token row 0 emits: at least one row ends early.
    greedy = generate(model, prompts, lengths, max_new_tokens=10, eos_id=eos)
    beam = beam_search(
        model, prompts, lengths, beam_size=1, max_new_tokens=10, eos_id=eos, length_penalty=0.0
    )
    assert int(greedy.lengths_B.min()) < 6 + 10
    np.testing.assert_array_equal(beam.lengths_BxK[:, 0], greedy.lengths_B)
    for row in range(4):
        end = int(greedy.lengths_B[row])
        np.testing.assert_array_equal(beam.tokens_BxKxL[row, 0, :end], greedy.tokens_BxL[row, :end])


@pytest.mark.slow
def test_beam_finds_the_more_probable_sequence_that_greedy_misses():
    # Vocabulary: EOS, BOS, a, b. After the prompt: a 0.6, b 0.4. After a: a, b, EOS at 1/3
    # each; after b: EOS surely. Greedy takes a (then at best 0.6 / 3 = 0.2); "b EOS" is 0.4.
    log = np.log
    table = np.full((4, 4, 4), -1e9)
    table[0, 1] = [-1e9, -1e9, log(0.6), log(0.4)]
    table[1, 2] = [log(1 / 3)] * 4
    table[1, 2, 1] = -1e9
    table[1, 3] = [0.0, -1e9, -1e9, -1e9]
    table[2] = [[0.0, -1e9, -1e9, -1e9]] * 4  # Everything ends after two tokens.
    greedy = _run(table, beam_size=1, max_new_tokens=3)
    wide = _run(table, beam_size=2, max_new_tokens=3)
    assert list(np.asarray(greedy.tokens_BxKxL[0, 0, 1:3])) == [2, 2] or greedy.scores_BxK[
        0, 0
    ] < log(0.39)
    np.testing.assert_array_equal(wide.tokens_BxKxL[0, 0, :3], [1, 3, EOS])
    assert float(wide.scores_BxK[0, 0]) == pytest.approx(log(0.4), rel=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_a_beam_as_wide_as_every_sequence_returns_the_exact_best(alpha):
    V, N = 3, 3  # EOS and two symbols; up to 3 new tokens.
    rng = np.random.default_rng(1)
    table = rng.normal(size=(N + 1, V, V)) * 2.0

    def logp(t, v):
        row = table[t, v]
        return row - np.log(np.exp(row).sum())

    best = (-np.inf, None)
    for n in range(1, N + 1):  # Sequences that end in EOS at n tokens, or run out at N.
        for body in itertools.product(range(1, V), repeat=n - 1):
            for last in [EOS] if n < N else range(V):
                sequence = (*body, last)
                previous, score = 1, 0.0
                for t, token in enumerate(sequence):
                    score += logp(t, previous)[token]
                    previous = token
                best = max(best, (score / length_penalty(n, alpha), sequence))
    everything = _run(table, beam_size=V**N, max_new_tokens=N, alpha=alpha)
    found = np.asarray(everything.tokens_BxKxL[0, 0, 1 : everything.lengths_BxK[0, 0]])
    assert tuple(found) == best[1]
    assert float(everything.scores_BxK[0, 0]) == pytest.approx(best[0], rel=1e-5)
    scores = np.asarray(everything.scores_BxK[0])
    finite = scores[np.isfinite(scores)]
    assert len(finite) == 1 + 2 + 4 * 3  # Every sequence is in the n-best list ...
    assert np.all(np.diff(finite) <= 1e-6)  # ... best first.


@pytest.mark.slow
def test_beam_search_rejects_bad_arguments():
    model = make_decoder(make_tiny_config())
    prompts = np.ones((2, 3), np.int32)
    for kwargs, message in [
        (dict(beam_size=0), "beam_size"),
        (dict(max_new_tokens=47), "max_new_tokens"),
        (dict(length_penalty=-1.0), "length_penalty"),
        (dict(eos_id=2.0), "eos_id"),
    ]:
        args = dict(beam_size=2, max_new_tokens=4, eos_id=2) | kwargs
        with pytest.raises(ValueError, match=message):
            beam_search(model, prompts, **args)
    assert jax.tree.leaves(beam_search(model, prompts, beam_size=2, max_new_tokens=46, eos_id=2))
