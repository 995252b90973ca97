"""Data for every experiment: synthetic seq2seq tasks, and TFDS text and translation tokenised as
bytes or SentencePiece pieces (data/tokenizer.py; the offline Bible corpus is data/bible.py).

`make_task(config.data)` returns a Task whose `batch(step, batch_size, split=...)` is a pure
function of (seed, split, step), which is what makes resumed training bitwise-exact. A batch is a
dict of numpy arrays (B rows, T = seq_len positions):

- inputs_BxT (int32) = seq[:-1] and targets_BxT (int32) = seq[1:], where each sequence is
  `BOS source... SEP target... EOS` right-padded with PAD to seq_len + 1 tokens (data/vocab.py).
- loss_mask_BxT (float32): 1.0 where the loss is taken. loss_on="target": input positions
  [prefix_len - 1, length), whose targets are the target tokens and EOS; "all": every non-pad
  target.
- lengths_B (int32): len(seq) - 1, the positions that have a non-pad target. When a row is
  shorter than seq_len + 1 tokens, its EOS also appears in inputs, at index lengths.
- prefix_lengths_B (int32): tokens of the prompt `BOS source SEP` (1 when there is no source). The
  reference continuation of a prompt inputs[:prefix_len] is targets[prefix_len - 1 : length].
"""

from typing import Protocol

import ml_collections
import numpy as np

from data import distilled, synthetic, tokenizer

TFDS_TASKS = ("tfds_text", "tfds_translation")
TASKS = synthetic.TASKS + TFDS_TASKS


class Task(Protocol):
    """A source of batches; see the module docstring for the batch format."""

    name: str
    vocab_size: int  # Includes the five special tokens.
    seq_len: int  # Length of inputs and targets.
    num_symbols: int  # Ordinary symbols (256 for bytes).
    length_preserving: bool  # Target length == source length (copy, reverse, sort).

    def outcome(self, source: np.ndarray, generated: np.ndarray) -> str | None:
        """The grade of a continuation on a multi-modal task (correct, mixed, wrong); else None."""

    def batch(
        self,
        step: int,
        batch_size: int,
        *,
        split: str = "train",
        process_index: int = 0,
        process_count: int = 1,
    ) -> dict[str, np.ndarray]: ...


def default_data_config() -> ml_collections.ConfigDict:
    """The `data` sub-config, with a default for every key any task reads."""
    config = ml_collections.ConfigDict()
    config.task = "copy"  # One of TASKS.
    config.seed = 0
    # Synthetic tasks.
    config.num_symbols = 16
    config.min_len = 4  # Source length (addition: digits per operand), uniform in [min, max].
    config.max_len = 12
    config.seq_len = 0  # 0: the smallest that fits (synthetic), or 256 (TFDS).
    config.loss_on = "target"  # "target" or "all"; text without a source always uses all.
    # TFDS tasks (prepare them with scripts/prepare_data.py).
    config.tfds_name = "tiny_shakespeare"  # e.g. "bible/en-es", "lm1b", "wmt14_translate/de-en".
    config.data_dir = ""  # "": $TFDS_DATA_DIR or ~/tensorflow_datasets.
    config.text_key = "text"
    config.source_key = "de"
    config.target_key = "en"
    config.train_split = "train"
    config.eval_split = "test"
    # One of tokenizer.TOKENIZERS: "bytes" (256 symbols) or "sentencepiece", trained once on the
    # train split and stored beside the prepared data (or in tokenizer_dir, "" = beside it).
    config.tokenizer = "bytes"
    config.vocab_size = 0  # SentencePiece pieces (0: 4000); the model's vocabulary adds 5 ids.
    config.tokenizer_dir = ""
    # A distill.py output folder: train on a teacher's outputs instead of the task's targets
    # (sequence-level knowledge distillation; data/distilled.py). "": the task's own data.
    config.distilled_dir = ""
    return config


def make_task(config: ml_collections.ConfigDict) -> Task:
    """The task that the `data` sub-config describes (trained on `distilled_dir` if set)."""
    task = _base_task(config)
    if config.distilled_dir:
        return distilled.DistilledTask(task, config, config.distilled_dir)
    return task


def _base_task(config: ml_collections.ConfigDict) -> Task:
    tokenizer.check_tokenizer(config.tokenizer)
    if config.task in synthetic.TASKS:
        if config.tokenizer != "bytes" or config.vocab_size:
            raise ValueError(
                f"data.tokenizer={config.tokenizer!r} (data.vocab_size={config.vocab_size}) is for "
                f"the TFDS tasks {TFDS_TASKS}; data.task={config.task!r} has its own symbols."
            )
        return synthetic.SyntheticTask(
            name=config.task,
            num_symbols=config.num_symbols,
            min_len=config.min_len,
            max_len=config.max_len,
            seq_len=config.seq_len,
            loss_on=config.loss_on,
            seed=config.seed,
        )
    if config.task in TFDS_TASKS:
        # Imported here so that synthetic runs skip loading TFDS and grain (about a second).
        from data import tfds_data

        if config.task == "tfds_text":
            return tfds_data.TfdsTextTask(config)
        return tfds_data.TfdsTranslationTask(config)
    raise ValueError(f"Unknown data.task={config.task!r}; known tasks: {TASKS}.")
