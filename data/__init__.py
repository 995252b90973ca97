"""Data for every experiment: synthetic seq2seq tasks, and TFDS text and translation tokenised as
bytes or SentencePiece pieces (data/tokenizer.py; the offline Bible corpus is data/bible.py).

`make_task(config.data)` returns the Task that the registry TASKS (id -> factory of a DataConfig,
data/config.py) holds under `data.task`; a new task is one `register_task` call, and a new
synthetic task (data/synthetic/) one `register_synthetic` call with its record. A Task's
`batch(step, batch_size, split=...)` is a pure function of (seed, split, step), which is what
makes resumed training bitwise-exact. A batch is a dict of numpy arrays (B rows, T = seq_len
positions; a token-count training batch, `data.batch_tokens`, has as many rows as its budget
allows and is as wide as its length bucket needs, data/token_batches.py):

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

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import ml_collections
import numpy as np

from data import distilled, synthetic
from data.config import DataConfig


class Task(Protocol):
    """A source of batches (see the module docstring for the batch format), and what evaluation
    needs to know about it."""

    name: str  # Its id in TASKS.
    config: DataConfig  # The data config it was made from.
    vocab_size: int  # Includes the five special tokens.
    seq_len: int  # Length of inputs and targets.
    num_symbols: int  # Ordinary symbols (256 for bytes).
    length_preserving: bool  # Target length == source length (copy, reverse, sort).
    label: str  # For people: "copy", "bible/en-es (en→es)", "... (distilled from <teacher>)".
    text_metrics: bool  # Also scored on detokenised text, with BLEU and chrF (translation).

    def detokenize(self, ids) -> str:
        """The text of token ids, special tokens dropped."""

    def token_label(self, token: int) -> str:
        """One token id as the report's maps show it: its text, else its symbol."""

    def random_control(self, max_len: int, vocab_size: int) -> "Task":
        """The `random` task with this task's symbols and lengths, fitted to a model of max_len
        positions and vocab_size ids: the control that gives the ln(num_symbols) floor."""

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


TaskFactory = Callable[[DataConfig], Task]


def _tfds_text(config: DataConfig) -> Task:
    # Imported here so that synthetic runs skip loading TFDS and grain (about a second).
    from data import tfds_data

    return tfds_data.TfdsTextTask(config)


def _tfds_translation(config: DataConfig) -> Task:
    from data import tfds_translation

    return tfds_translation.TfdsTranslationTask(config)


# The task registry: data.task -> the factory of its Task (filled below).
TASKS: dict[str, TaskFactory] = {}


def register_task(name: str, factory: TaskFactory) -> None:
    """Makes `factory(config)` the task of data.task=`name`."""
    if name in TASKS:
        raise ValueError(f"data.task={name!r} is already registered.")
    TASKS[name] = factory


def register_synthetic(kind: synthetic.SyntheticKind) -> None:
    """Makes the synthetic task that `kind` describes the task of data.task=`kind.name`."""
    register_task(kind.name, kind.make_task)


for _kind in synthetic.BUILT_IN:
    register_synthetic(_kind)
register_task("tfds_text", _tfds_text)
register_task("tfds_translation", _tfds_translation)


def training_notes(task: Task) -> list[str]:
    """What training on `task` should say once (pairs cut to fit, repeated rows): the task's
    optional `training_notes()`; none for a task without it."""
    notes = getattr(task, "training_notes", None)
    return notes() if notes is not None else []


def default_data_config() -> ml_collections.ConfigDict:
    """The `data` sub-config for experiments to edit: DataConfig's keys and defaults."""
    return ml_collections.ConfigDict(dataclasses.asdict(DataConfig()))


def make_task(config: DataConfig | ml_collections.ConfigDict | Mapping[str, Any]) -> Task:
    """The task that the `data` config describes (trained on `distilled_dir` if set)."""
    if not isinstance(config, DataConfig):  # A ConfigDict or a dict, while callers move over.
        values = config.to_dict() if hasattr(config, "to_dict") else dict(config)
        config = DataConfig.from_dict(values)
    factory = TASKS.get(config.task)
    if factory is None:
        raise ValueError(f"Unknown data.task={config.task!r}; known tasks: {tuple(TASKS)}.")
    task = factory(config)
    if config.distilled_dir:
        return distilled.DistilledTask(task, config, config.distilled_dir)
    return task
