"""Synthetic seq2seq tasks, generated on the fly with vectorised numpy.

Every row is `BOS source SEP target EOS` (see data/batching.py), with symbol i as token id
FIRST_SYMBOL + i and a source length n drawn uniformly from [min_len, max_len]:

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
- random: `BOS x_1 ... x_n EOS` with uniform random symbols and no source or SEP
  (prefix_lengths = 1). With loss_on="target" the loss covers the n symbols only, not EOS, so no
  honest model can beat ln(num_symbols) nats per token: a lower loss proves that the model sees
  the future (the leakage floor). loss_on="all" adds EOS. Every task's `random_control` is this
  task with its own symbols, fitted to a model (`random_control` below).

A batch is a pure function of (seed, split, step): its generator is seeded by exactly those. The
whole global batch is generated and each process keeps its rows, so the union over processes
is the single-process batch whatever process_count is (cheap: a batch of 256 takes ~0.1 ms).
"""

import dataclasses

import numpy as np

from data import batching, tokenizer, vocab
from data.config import DataConfig

TASKS = ("copy", "reverse", "sort", "addition", "random", "two_alphabets")
LENGTH_PRESERVING = ("copy", "reverse", "sort", "two_alphabets")
# Tasks with several correct outputs per source, scored by `SyntheticTask.outcome`.
MULTIMODAL = ("two_alphabets",)
OUTCOMES = ("correct", "mixed", "wrong")


def min_seq_len(task: str, max_len: int) -> int:
    """The smallest seq_len that fits every row of `task` with sources up to max_len long."""
    if task == "addition":
        return 3 * max_len + 2  # BOS, 2n operand digits, SEP, n sum digits, EOS.
    if task == "random":
        return max_len + 1  # BOS, n symbols, EOS.
    return 2 * max_len + 2  # BOS, n source, SEP, n target, EOS.


def from_config(config: DataConfig) -> "SyntheticTask":
    """The registry's factory of every synthetic task: the task `config.task` names."""
    tokenizer.check_tokenizer(config.tokenizer)
    if config.tokenizer != "bytes" or config.vocab_size:
        raise ValueError(
            f"data.tokenizer={config.tokenizer!r} (data.vocab_size={config.vocab_size}) is for "
            f"the TFDS tasks that read text; data.task={config.task!r} has its own symbols."
        )
    return SyntheticTask(
        name=config.task,
        num_symbols=config.num_symbols,
        min_len=config.min_len,
        max_len=config.max_len,
        seq_len=config.seq_len,
        loss_on=config.loss_on,
        seed=config.seed,
        config=config,
    )


def random_control(config: DataConfig, max_len: int, num_symbols: int) -> "SyntheticTask":
    """The `random` task with `num_symbols` symbols and `config`'s lengths and seed, cut to fit a
    model of `max_len` positions: the random-token control of the task `config` describes."""
    fitted_max_len = min(config.max_len, max_len - 1)
    return from_config(
        dataclasses.replace(
            config,
            task="random",
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


def _reverse(symbols_BxL: np.ndarray, lengths_B: np.ndarray) -> np.ndarray:
    index_BxL = lengths_B[:, None] - 1 - np.arange(symbols_BxL.shape[1])[None, :]
    return np.take_along_axis(symbols_BxL, np.clip(index_BxL, 0, None), axis=1)


def _sort(symbols_BxL: np.ndarray, lengths_B: np.ndarray, num_symbols: int) -> np.ndarray:
    # Positions past a row's length get a sentinel above every symbol, so they sort last.
    beyond_BxL = np.arange(symbols_BxL.shape[1])[None, :] >= lengths_B[:, None]
    return np.sort(np.where(beyond_BxL, num_symbols, symbols_BxL), axis=1)


def _add(a_BxN: np.ndarray, b_BxN: np.ndarray, base: int) -> np.ndarray:
    """Digit-wise sum of least-significant-first numbers; carries out of the top are dropped."""
    sum_BxN = np.empty_like(a_BxN)
    carry_B = np.zeros(a_BxN.shape[0], dtype=a_BxN.dtype)
    # Carries only flow upward, so digits past a row's length never change the digits below it.
    for digit in range(a_BxN.shape[1]):
        total_B = a_BxN[:, digit] + b_BxN[:, digit] + carry_B
        sum_BxN[:, digit], carry_B = total_B % base, total_B // base
    return sum_BxN


@dataclasses.dataclass(frozen=True)
class SyntheticTask:
    """A synthetic task; see the module docstring for the formats."""

    name: str
    num_symbols: int = 16
    min_len: int = 4
    max_len: int = 12
    seq_len: int = 0  # 0: the smallest that fits (min_seq_len).
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
        if self.name not in TASKS:
            raise ValueError(f"Unknown synthetic task {self.name!r}; known: {TASKS}.")
        if self.num_symbols < 2:
            raise ValueError(f"data.num_symbols={self.num_symbols} must be at least 2.")
        if not 1 <= self.min_len <= self.max_len:
            raise ValueError(
                f"Need 1 <= data.min_len ({self.min_len}) <= data.max_len ({self.max_len})."
            )
        if self.seed < 0:
            raise ValueError(f"data.seed={self.seed} must be non-negative.")
        batching.check_loss_on(self.loss_on)
        needed = min_seq_len(self.name, self.max_len)
        if self.seq_len == 0:
            object.__setattr__(self, "seq_len", needed)
        elif self.seq_len < needed:
            raise ValueError(
                f"data.seq_len={self.seq_len} is too small for task {self.name!r} "
                f"with max_len={self.max_len}: it needs at least {needed} "
                "(or 0 for exactly that)."
            )

    @property
    def vocab_size(self) -> int:
        alphabets = 2 if self.name == "two_alphabets" else 1
        return vocab.vocab_size(alphabets * self.num_symbols)

    @property
    def label(self) -> str:
        return self.name

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
        if self.name not in MULTIMODAL:
            return None
        generated = np.asarray(generated)
        symbols = np.asarray(source) - vocab.FIRST_SYMBOL
        ends = len(generated) > 0 and generated[-1] == vocab.EOS
        body = (generated[:-1] if ends else generated) - vocab.FIRST_SYMBOL
        spelled = [ends and np.array_equal(body, symbols + k * self.num_symbols) for k in (0, 1)]
        if any(spelled):
            return "correct"
        in_a = (body >= 0) & (body < self.num_symbols)
        in_b = (body >= self.num_symbols) & (body < 2 * self.num_symbols)
        return "mixed" if in_a.any() and in_b.any() else "wrong"

    @property
    def length_preserving(self) -> bool:
        return self.name in LENGTH_PRESERVING

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
        if self.name == "random":
            return self._random_batch(symbols_BxL, lengths_B)
        if self.name == "addition":
            b_BxL = rng.integers(0, self.num_symbols, size=symbols_BxL.shape, dtype=np.int32)
            target_BxM = _add(symbols_BxL, b_BxL, self.num_symbols)
            source_BxL = np.stack([symbols_BxL, b_BxL], axis=2).reshape(batch_size, -1)
            source_lengths_B, target_lengths_B = 2 * lengths_B, lengths_B
        else:
            source_BxL, source_lengths_B, target_lengths_B = symbols_BxL, lengths_B, lengths_B
            if self.name == "copy":
                target_BxM = symbols_BxL
            elif self.name == "two_alphabets":
                alphabet_B = rng.integers(0, 2, size=batch_size, dtype=np.int32)
                target_BxM = symbols_BxL + self.num_symbols * alphabet_B[:, None]
            elif self.name == "reverse":
                target_BxM = _reverse(symbols_BxL, lengths_B)
            else:
                target_BxM = _sort(symbols_BxL, lengths_B, self.num_symbols)
        return batching.seq2seq_batch(
            source_BxL + vocab.FIRST_SYMBOL,
            source_lengths_B,
            target_BxM + vocab.FIRST_SYMBOL,
            target_lengths_B,
            seq_len=self.seq_len,
            loss_on=self.loss_on,
        )

    def _random_batch(self, symbols_BxL: np.ndarray, lengths_B: np.ndarray) -> dict:
        batch_size = symbols_BxL.shape[0]
        seq_BxS, prefix_lengths_B, input_lengths_B = batching.assemble(
            np.zeros((batch_size, 0), np.int32),
            np.zeros(batch_size, np.int32),
            symbols_BxL + vocab.FIRST_SYMBOL,
            lengths_B,
            seq_len=self.seq_len,
            with_sep=False,
        )
        # inputs[i] predicts x_{i+1} for i < n; inputs[n] (the last symbol) predicts EOS.
        loss_stop_B = lengths_B if self.loss_on == "target" else input_lengths_B
        return batching.make_batch(
            seq_BxS, prefix_lengths_B, input_lengths_B, np.zeros(batch_size, np.int32), loss_stop_B
        )
