"""The built-in synthetic tasks, one `SyntheticKind` record each (symbol i is token id
FIRST_SYMBOL + i; n, the source length, is uniform in [min_len, max_len]):

- copy: target = source.
- reverse: target = source reversed.
- sort: target = source sorted ascending by symbol id.
- addition: two n-digit numbers a and b in base num_symbols (n in [min_len, max_len], so the
  source has 2n tokens). Digits are least-significant first, because then each sum digit depends
  only on digits already seen (carries flow forward, which an AR decoder can learn). The source
  interleaves the operands, `a_0 b_0 a_1 b_1 ... a_{n-1} b_{n-1}`, so digit pairs stay aligned;
  the target is the n digits of (a + b) mod base**n. Target length n = source length / 2, so the
  task is not length preserving, but the carries make the target tokens depend on one another,
  which is what a one-shot non-AR decoder finds hard.
- two_alphabets (multi-modal): the target is the source written in one of two alphabets, symbol
  i as i (alphabet A) or as num_symbols + i (alphabet B), chosen at random per row; nothing in the
  source says which. Any output wholly in one alphabet that spells the source is correct; one
  with tokens of both is *mixed*, the failure of decoders that pick each token independently
  (Gu et al. 2018). The vocabulary holds 2 * num_symbols symbols.
- random: see data/synthetic/task.py (every task's random-token control).

Each generator takes (rng, symbols_BxL, lengths_B, num_symbols), the uniform symbols and lengths
already drawn from rng, and draws anything more it needs from rng after them.
"""

import numpy as np

from data import vocab
from data.synthetic.task import RANDOM, Rows, SyntheticKind


def _copy(rng, symbols_BxL, lengths_B, num_symbols) -> Rows:
    del rng, num_symbols
    return Rows(symbols_BxL, lengths_B, symbols_BxL, lengths_B)


def _reverse(rng, symbols_BxL, lengths_B, num_symbols) -> Rows:
    del rng, num_symbols
    index_BxL = lengths_B[:, None] - 1 - np.arange(symbols_BxL.shape[1])[None, :]
    reversed_BxL = np.take_along_axis(symbols_BxL, np.clip(index_BxL, 0, None), axis=1)
    return Rows(symbols_BxL, lengths_B, reversed_BxL, lengths_B)


def _sort(rng, symbols_BxL, lengths_B, num_symbols) -> Rows:
    del rng
    # Positions past a row's length get a sentinel above every symbol, so they sort last.
    beyond_BxL = np.arange(symbols_BxL.shape[1])[None, :] >= lengths_B[:, None]
    sorted_BxL = np.sort(np.where(beyond_BxL, num_symbols, symbols_BxL), axis=1)
    return Rows(symbols_BxL, lengths_B, sorted_BxL, lengths_B)


def _add(a_BxN: np.ndarray, b_BxN: np.ndarray, base: int) -> np.ndarray:
    """Digit-wise sum of least-significant-first numbers; carries out of the top are dropped."""
    sum_BxN = np.empty_like(a_BxN)
    carry_B = np.zeros(a_BxN.shape[0], dtype=a_BxN.dtype)
    # Carries only flow upward, so digits past a row's length never change the digits below it.
    for digit in range(a_BxN.shape[1]):
        total_B = a_BxN[:, digit] + b_BxN[:, digit] + carry_B
        sum_BxN[:, digit], carry_B = total_B % base, total_B // base
    return sum_BxN


def _addition(rng, symbols_BxL, lengths_B, num_symbols) -> Rows:
    # symbols_BxL is the operand a; b is drawn after it.
    b_BxL = rng.integers(0, num_symbols, size=symbols_BxL.shape, dtype=np.int32)
    sum_BxL = _add(symbols_BxL, b_BxL, num_symbols)
    source_BxL = np.stack([symbols_BxL, b_BxL], axis=2).reshape(symbols_BxL.shape[0], -1)
    return Rows(source_BxL, 2 * lengths_B, sum_BxL, lengths_B)


def _two_alphabets(rng, symbols_BxL, lengths_B, num_symbols) -> Rows:
    alphabet_B = rng.integers(0, 2, size=symbols_BxL.shape[0], dtype=np.int32)
    return Rows(symbols_BxL, lengths_B, symbols_BxL + num_symbols * alphabet_B[:, None], lengths_B)


def _two_alphabets_outcome(source: np.ndarray, generated: np.ndarray, num_symbols: int) -> str:
    """Correct: ends in EOS and spells the source wholly in one alphabet; mixed: has tokens of
    both alphabets; else wrong."""
    generated = np.asarray(generated)
    symbols = np.asarray(source) - vocab.FIRST_SYMBOL
    ends = len(generated) > 0 and generated[-1] == vocab.EOS
    body = (generated[:-1] if ends else generated) - vocab.FIRST_SYMBOL
    spelled = [ends and np.array_equal(body, symbols + k * num_symbols) for k in (0, 1)]
    if any(spelled):
        return "correct"
    in_a = (body >= 0) & (body < num_symbols)
    in_b = (body >= num_symbols) & (body < 2 * num_symbols)
    return "mixed" if in_a.any() and in_b.any() else "wrong"


def _addition_min_seq_len(max_len: int) -> int:
    """BOS, 2n operand digits, SEP, n sum digits, EOS."""
    return 3 * max_len + 2


COPY = SyntheticKind("copy", _copy, length_preserving=True)
REVERSE = SyntheticKind("reverse", _reverse, length_preserving=True)
SORT = SyntheticKind("sort", _sort, length_preserving=True)
ADDITION = SyntheticKind(
    "addition", _addition, length_preserving=False, min_seq_len=_addition_min_seq_len
)
TWO_ALPHABETS = SyntheticKind(
    "two_alphabets",
    _two_alphabets,
    length_preserving=True,
    alphabets=2,
    outcome=_two_alphabets_outcome,
)
# The built-in synthetic tasks, in the order data/__init__.py registers them.
BUILT_IN = (COPY, REVERSE, SORT, ADDITION, RANDOM, TWO_ALPHABETS)
