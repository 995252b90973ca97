"""Training batches by token count from length buckets (fairseq's `--max-tokens`), one epoch at a
time, as a pure function of (seed, step).

Each pair has a width: the wider of its prompt `BOS source SEP` and its decoder row `SEP target`,
rounded up to a rung of `batching.WIDTH_LADDER` (its bucket). Epoch e shuffles the pairs
(seed, e), groups them by bucket, cuts each bucket into batches of
`rows_for(batch_tokens, width)` rows (as many as fit `batch_tokens` positions over both stacks,
a multiple of ROW_MULTIPLE so that devices and processes split them), and shuffles the batches.
So every pair is trained once an epoch, a batch's padding is what its bucket leaves, and a run
compiles one train step per bucket. A bucket's last batch is topped up with its own pairs again
(about 0.5% of an epoch's rows on bible/en-es at the study's size): `top_up_share`.

Shape legend: N pairs, B rows of a batch.
"""

import functools

import numpy as np

from data import batching

ROW_MULTIPLE = 8  # Rows of every batch are a multiple of it (devices and processes split them).


def check_devices(count: int) -> None:
    """Raises a one-line ValueError when `count` devices cannot split every token batch's rows
    (a multiple of ROW_MULTIPLE) evenly."""
    if ROW_MULTIPLE % count:
        raise ValueError(
            f"data.batch_tokens gives batches of a multiple of {ROW_MULTIPLE} rows, which "
            f"{count} devices cannot split evenly; use a device count that divides "
            f"{ROW_MULTIPLE}, or data.batch_tokens=0."
        )


def rows_for(batch_tokens: int, width: int) -> int:
    """Rows of a batch of `width`-wide prompts and decoder rows within `batch_tokens` positions."""
    return max(ROW_MULTIPLE, batch_tokens // (2 * width) // ROW_MULTIPLE * ROW_MULTIPLE)


class TokenBatches:
    """Which pairs make up each training batch (module docstring)."""

    def __init__(
        self,
        prompt_lengths_N: np.ndarray,
        decoder_lengths_N: np.ndarray,
        batch_tokens: int,
        seed: int,
        ladder: tuple[int, ...] = batching.WIDTH_LADDER,
    ):
        if len(prompt_lengths_N) == 0:
            raise ValueError("No pairs to batch.")
        self.batch_tokens, self.seed = batch_tokens, seed
        widths_N = np.maximum(prompt_lengths_N, decoder_lengths_N)
        self.buckets_N = np.array([batching.bucket_width(int(w), ladder) for w in widths_N])
        self._epoch = functools.lru_cache(maxsize=4)(self._epoch_uncached)
        self._sizes: list[int] = []  # Batches in each epoch planned so far.

    def _epoch_uncached(self, epoch: int) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, epoch])
        order_N = rng.permutation(len(self.buckets_N))
        batches = []
        for width in np.unique(self.buckets_N):
            members = order_N[self.buckets_N[order_N] == width]
            rows = rows_for(self.batch_tokens, int(width))
            count = -(-len(members) // rows)
            padded = np.resize(members, count * rows)  # The last batch repeats its bucket's pairs.
            batches += list(padded.reshape(count, rows))
        return [batches[i] for i in rng.permutation(len(batches))]

    def pairs(self, step: int) -> np.ndarray:
        """The pair indices of global batch `step` (epochs follow each other)."""
        if step < 0:
            raise ValueError(f"step={step} must be non-negative.")
        epoch, start = 0, 0
        while True:
            if epoch == len(self._sizes):
                self._sizes.append(len(self._epoch(epoch)))
            if step < start + self._sizes[epoch]:
                return self._epoch(epoch)[step - start]
            start += self._sizes[epoch]
            epoch += 1

    def top_up_share(self) -> float:
        """The share of an epoch's rows that repeat a pair to fill a bucket's last batch."""
        rows = sum(len(batch) for batch in self._epoch(0))
        return 1.0 - len(self.buckets_N) / rows
