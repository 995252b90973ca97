"""The synthetic task: a `SyntheticKind` record (its generator and what the rest of the code
needs to know about it) and the `SyntheticTask` it makes from a DataConfig, which assembles the
generator's rows into batches (data/batching.py).

The random task lives here, because it is every task's control: `BOS x_1 ... x_n EOS` with
uniform random symbols and no source or SEP (prefix_lengths = 1). With loss_on="target" the loss
covers the n symbols only, not EOS, so no honest model can beat ln(num_symbols) nats per token: a
lower loss proves that the model sees the future (the leakage floor). loss_on="all" adds EOS.
Every task's `random_control` is this task with its own symbols, fitted to a model
(`random_control` below).
"""

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from data import batching, tokenizer, vocab
from data.config import DataConfig

# The grades of a multi-modal task's outputs (`SyntheticKind.outcome`).
OUTCOMES = ("correct", "mixed", "wrong")


class Rows(NamedTuple):
    """A generator's rows, in symbols (0 .. alphabets * num_symbols - 1), before BOS/SEP/EOS."""

    source_BxL: np.ndarray
    source_lengths_B: np.ndarray
    target_BxM: np.ndarray
    target_lengths_B: np.ndarray


# generate(rng, symbols_BxL, lengths_B, num_symbols) -> Rows. symbols_BxL and lengths_B are
# already drawn from rng (uniform symbols, lengths in [min_len, max_len]); a generator that
# needs more randomness draws it from rng after them.
Generator = Callable[[np.random.Generator, np.ndarray, np.ndarray, int], Rows]
# outcome(source, generated, num_symbols) -> one of OUTCOMES (see SyntheticTask.outcome).
Grader = Callable[[np.ndarray, np.ndarray, int], str]


def seq2seq_min_seq_len(max_len: int) -> int:
    """BOS, n source, SEP, n target, EOS: the seq_len of a task whose rows are n + n long."""
    return 2 * max_len + 2


@dataclasses.dataclass(frozen=True)
class SyntheticKind:
    """One synthetic task: what `SyntheticTask` needs to know to make and grade its rows."""

    name: str  # Its data.task id.
    generate: Generator
    length_preserving: bool  # Target length == source length, on every row.
    alphabets: int = 1  # The vocabulary holds alphabets x num_symbols symbols.
    # The smallest seq_len that fits every row with sources up to max_len long.
    min_seq_len: Callable[[int], int] = seq2seq_min_seq_len
    # False: rows are `BOS target EOS` (no source or SEP), and loss_on="target" scores the
    # target symbols but not EOS (the random task's floor).
    has_source: bool = True
    outcome: Grader | None = None  # Grades an output of a multi-modal task; None: one answer.

    def make_task(self, config: DataConfig) -> "SyntheticTask":
        """The registry's factory of this task: the SyntheticTask that `config` describes."""
        tokenizer.check_tokenizer(config.tokenizer)
        if config.tokenizer != "bytes" or config.vocab_size:
            raise ValueError(
                f"data.tokenizer={config.tokenizer!r} (data.vocab_size={config.vocab_size}) is "
                f"for the TFDS tasks that read text; data.task={config.task!r} has its own symbols."
            )
        if config.task != self.name:
            raise ValueError(f"data.task={config.task!r} is not synthetic task {self.name!r}.")
        return SyntheticTask(
            kind=self,
            num_symbols=config.num_symbols,
            min_len=config.min_len,
            max_len=config.max_len,
            seq_len=config.seq_len,
            loss_on=config.loss_on,
            seed=config.seed,
            config=config,
        )


def _random(rng, symbols_BxL, lengths_B, num_symbols) -> Rows:
    del rng, num_symbols
    batch_size = symbols_BxL.shape[0]
    no_source = np.zeros((batch_size, 0), np.int32), np.zeros(batch_size, np.int32)
    return Rows(*no_source, symbols_BxL, lengths_B)


def _random_min_seq_len(max_len: int) -> int:
    """BOS, n symbols, EOS."""
    return max_len + 1


RANDOM = SyntheticKind(
    "random",
    _random,
    length_preserving=False,
    min_seq_len=_random_min_seq_len,
    has_source=False,
)


def random_control(config: DataConfig, max_len: int, num_symbols: int) -> "SyntheticTask":
    """The `random` task with `num_symbols` symbols and `config`'s lengths and seed, cut to fit a
    model of `max_len` positions: the random-token control of the task `config` describes."""
    fitted_max_len = min(config.max_len, max_len - 1)
    return RANDOM.make_task(
        dataclasses.replace(
            config,
            task=RANDOM.name,
            num_symbols=num_symbols,
            tokenizer="bytes",  # A synthetic task has its own symbols.
            vocab_size=0,
            seq_len=0,
            loss_on="target",
            max_len=fitted_max_len,
            min_len=min(config.min_len, fitted_max_len),
            distilled_dir="",  # Uniform symbols: nothing a teacher could have written.
        )
    )


def _symbols(
    rng: np.random.Generator, batch_size: int, max_len: int, num_symbols: int, min_len: int
) -> tuple[np.ndarray, np.ndarray]:
    """Uniform symbols_BxL (beyond each row's length they are ignored) and lengths_B."""
    lengths_B = rng.integers(min_len, max_len + 1, size=batch_size, dtype=np.int32)
    symbols_BxL = rng.integers(0, num_symbols, size=(batch_size, max_len), dtype=np.int32)
    return symbols_BxL, lengths_B


@dataclasses.dataclass(frozen=True)
class SyntheticTask:
    """A synthetic task; see the module docstring for the formats."""

    kind: SyntheticKind = dataclasses.field(repr=False)
    num_symbols: int = 16
    min_len: int = 4
    max_len: int = 12
    seq_len: int = 0  # 0: the smallest that fits (SyntheticKind.min_seq_len).
    loss_on: str = "target"
    seed: int = 0
    # The data config the task was made from (None: the one the fields above describe).
    config: DataConfig | None = dataclasses.field(default=None, compare=False, repr=False)

    text_metrics = False  # Scored on its symbols, not on detokenised text.

    def __post_init__(self):
        if self.config is None:
            fields = ("num_symbols", "min_len", "max_len", "seq_len", "loss_on", "seed")
            described = DataConfig(task=self.name, **{key: getattr(self, key) for key in fields})
            object.__setattr__(self, "config", described)
        if self.num_symbols < 2:
            raise ValueError(f"data.num_symbols={self.num_symbols} must be at least 2.")
        if not 1 <= self.min_len <= self.max_len:
            raise ValueError(
                f"Need 1 <= data.min_len ({self.min_len}) <= data.max_len ({self.max_len})."
            )
        if self.seed < 0:
            raise ValueError(f"data.seed={self.seed} must be non-negative.")
        batching.check_loss_on(self.loss_on)
        needed = self.kind.min_seq_len(self.max_len)
        if self.seq_len == 0:
            object.__setattr__(self, "seq_len", needed)
        elif self.seq_len < needed:
            raise ValueError(
                f"data.seq_len={self.seq_len} is too small for task {self.name!r} "
                f"with max_len={self.max_len}: it needs at least {needed} "
                "(or 0 for exactly that)."
            )

    @property
    def name(self) -> str:
        return self.kind.name

    @property
    def vocab_size(self) -> int:
        return vocab.vocab_size(self.kind.alphabets * self.num_symbols)

    @property
    def label(self) -> str:
        return self.name

    @property
    def length_preserving(self) -> bool:
        return self.kind.length_preserving

    def detokenize(self, ids) -> str:
        """The symbols of token ids as text (letters; bytes for 256 symbols), specials dropped."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        symbols = ids[(ids >= vocab.FIRST_SYMBOL) & (ids < self.vocab_size)]
        return vocab.render(symbols, self.vocab_size - vocab.FIRST_SYMBOL)

    def token_label(self, token: int) -> str:
        """One token as people read it: its text, or its special symbol ("^", "|", "$")."""
        return self.detokenize([token]).strip() or vocab.render([token], self.num_symbols)

    def random_control(self, max_len: int, vocab_size: int) -> "SyntheticTask":
        """The `random` task with this task's symbols and lengths, fitted to a model of `max_len`
        positions (`vocab_size` is unused: the symbols are the task's own)."""
        del vocab_size
        return random_control(self.config, max_len, self.num_symbols)

    def outcome(self, source: np.ndarray, generated: np.ndarray) -> str | None:
        """For a multi-modal task, "correct", "mixed" or "wrong" of one generated continuation
        (its target tokens, then EOS, unless it was cut off) of a prompt's `source` tokens; None
        for other tasks. Only an output that ends in EOS can be correct."""
        if self.kind.outcome is None:
            return None
        return self.kind.outcome(source, generated, self.num_symbols)

    def batch(
        self,
        step: int,
        batch_size: int,
        *,
        split: str = "train",
        process_index: int = 0,
        process_count: int = 1,
    ) -> dict[str, np.ndarray]:
        """This process's rows of global batch `step` of `split`."""
        rows = batching.process_rows(batch_size, process_index, process_count)
        if step < 0:
            raise ValueError(f"step={step} must be non-negative.")
        rng = np.random.default_rng([self.seed, batching.split_id(split), step])
        batch = self._global_batch(rng, batch_size)
        return {key: value[rows] for key, value in batch.items()}

    def _global_batch(self, rng: np.random.Generator, batch_size: int) -> dict[str, np.ndarray]:
        symbols_BxL, lengths_B = _symbols(
            rng, batch_size, self.max_len, self.num_symbols, self.min_len
        )
        rows = self.kind.generate(rng, symbols_BxL, lengths_B, self.num_symbols)
        source_BxL = rows.source_BxL + vocab.FIRST_SYMBOL
        target_BxM = rows.target_BxM + vocab.FIRST_SYMBOL
        if self.kind.has_source:
            return batching.seq2seq_batch(
                source_BxL,
                rows.source_lengths_B,
                target_BxM,
                rows.target_lengths_B,
                seq_len=self.seq_len,
                loss_on=self.loss_on,
            )
        seq_BxS, prefix_lengths_B, input_lengths_B = batching.assemble(
            source_BxL,
            rows.source_lengths_B,
            target_BxM,
            rows.target_lengths_B,
            seq_len=self.seq_len,
            with_sep=False,
        )
        # inputs[i] predicts x_{i+1} for i < n; inputs[n] (the last symbol) predicts EOS.
        loss_stop_B = rows.target_lengths_B if self.loss_on == "target" else input_lengths_B
        return batching.make_batch(
            seq_BxS, prefix_lengths_B, input_lengths_B, np.zeros(batch_size, np.int32), loss_stop_B
        )
