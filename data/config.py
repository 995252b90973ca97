"""DataConfig: the typed, frozen boundary between the `data` sub-config and the tasks.

Experiments edit an ml_collections ConfigDict (`data.default_data_config()`, built from this
dataclass's defaults); `data.make_task` turns it into a DataConfig, and code in data/ derives
variants of one with `dataclasses.replace`.
"""

import dataclasses
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Every key any task reads, with its default."""

    task: str = "copy"  # An id in data.TASKS, the task registry.
    seed: int = 0
    # Synthetic tasks.
    num_symbols: int = 16
    min_len: int = 4  # Source length (addition: digits per operand), uniform in [min, max].
    max_len: int = 12
    seq_len: int = 0  # 0: the smallest that fits (synthetic), or 256 (TFDS).
    loss_on: str = "target"  # "target" or "all"; text without a source always uses all.
    # Training batches of tfds_translation (and its distilled data) by token count: each holds
    # up to batch_tokens positions over both stacks, from length buckets (data/token_batches.py);
    # train.batch_size then sizes the eval batches only. 0: batches of train.batch_size rows.
    batch_tokens: int = 0
    # TFDS tasks (prepare them with scripts/prepare_data.py).
    tfds_name: str = "tiny_shakespeare"  # e.g. "bible/en-es", "lm1b", "wmt14_translate/de-en".
    data_dir: str = ""  # "": $TFDS_DATA_DIR or ~/tensorflow_datasets.
    text_key: str = "text"
    source_key: str = "de"
    target_key: str = "en"
    train_split: str = "train"
    eval_split: str = "test"
    # One of tokenizer.TOKENIZERS: "bytes" (256 symbols) or "sentencepiece", trained once on the
    # train split and stored beside the prepared data (or in tokenizer_dir, "" = beside it).
    tokenizer: str = "bytes"
    vocab_size: int = 0  # SentencePiece pieces (0: 4000); the model's vocabulary adds 5 ids.
    tokenizer_dir: str = ""
    # A distill.py output folder: train on a teacher's outputs instead of the task's targets
    # (sequence-level knowledge distillation; data/distilled.py). "": the task's own data.
    distilled_dir: str = ""

    def __post_init__(self):
        for key in ("seq_len", "vocab_size", "batch_tokens"):  # 0: chosen for the task / off.
            if getattr(self, key) < 0:
                raise ValueError(
                    f"data.{key} must be >= 0 (0: chosen for the task), got {getattr(self, key)}."
                )

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "DataConfig":
        """A config from a mapping (e.g. `config.data.to_dict()`, or JSON), naming unknown keys;
        missing keys keep their defaults, and lists become tuples."""
        known = [field.name for field in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"Unknown data config keys {unknown}; known keys are {known}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
