"""Sequence-level knowledge distillation's data (Kim & Rush 2016): a teacher's outputs on a task's
training split, read back like any other task.

`distill.py` writes two files into a folder:
  - `train.npz`: the batch arrays (see data/__init__.py) of every distilled row, each row the
    original prompt followed by the teacher's continuation;
  - `provenance.json`: the teacher's run folder, variant, seed and step, the decoder, the number
    of rows, and the data config they were made from.
With `data.distilled_dir = <folder>`, `make_task` wraps the configured task in a `DistilledTask`:
its train split is the folder's rows, in order, cycling; every other split is the original
task's, so a student is still scored against the real references.
"""

import contextlib
import functools
import json
import os
import zipfile
import zlib
from typing import TYPE_CHECKING

import numpy as np

from data import batching, token_batches, vocab
from data.config import DataConfig

if TYPE_CHECKING:
    from data import Task

ROWS = "train.npz"
PROVENANCE = "provenance.json"
KEYS = ("inputs", "targets", "loss_mask", "lengths", "prefix_lengths")
# Data settings that must be the teacher's: they fix the vocabulary, the row width and the loss.
MATCHED = ("task", "num_symbols", "loss_on", "tfds_name", "tokenizer", "vocab_size")
# What a provenance written before a key existed stands for.
_BEFORE_THE_KEY = {"tokenizer": "bytes", "vocab_size": 0}


def rows_from_continuations(
    batch: dict[str, np.ndarray], continuations: list[np.ndarray], seq_len: int, loss_on: str
) -> dict[str, np.ndarray]:
    """The batch arrays of each row's prompt followed by its (generated) continuation.

    A continuation that ends in EOS keeps it; one cut at the length limit has none.
    """
    prefix_B = batch["prefix_lengths"]
    sources = [batch["inputs"][b, 1 : prefix_B[b] - 1] for b in range(len(prefix_B))]
    ends_B = np.array([len(c) > 0 and c[-1] == vocab.EOS for c in continuations])
    targets = [c[:-1] if end else c for c, end in zip(continuations, ends_B, strict=True)]
    source_BxL, source_lengths_B = batching.pad_rows(sources)
    target_BxM, target_lengths_B = batching.pad_rows(targets)
    seq_BxS, prefix_lengths_B, lengths_B = batching.assemble(
        source_BxL, source_lengths_B, target_BxM, target_lengths_B, seq_len=seq_len,
        with_eos_B=ends_B,
    )  # fmt: skip
    loss_start_B = prefix_lengths_B - 1 if loss_on == "target" else np.zeros_like(lengths_B)
    return batching.make_batch(seq_BxS, prefix_lengths_B, lengths_B, loss_start_B, lengths_B)


def write(directory: str, rows: dict[str, np.ndarray], provenance: dict) -> None:
    """Writes the rows and their provenance; each file appears whole (written, then renamed)."""
    os.makedirs(directory, exist_ok=True)
    staging = os.path.join(directory, f".{ROWS}.tmp.npz")
    try:  # A full disk leaves no half-written temporary behind.
        np.savez_compressed(staging, **{key: rows[key] for key in KEYS})
        os.replace(staging, os.path.join(directory, ROWS))
        staging = os.path.join(directory, f".{PROVENANCE}.tmp")
        with open(staging, "w") as f:
            json.dump(provenance, f, indent=2)
            f.write("\n")
        os.replace(staging, os.path.join(directory, PROVENANCE))
    except OSError:
        with contextlib.suppress(FileNotFoundError):
            os.remove(staging)
        raise


def read_provenance(directory: str) -> dict:
    """provenance.json of a distilled folder; a ValueError says what is missing."""
    path = os.path.join(directory, PROVENANCE)
    if not os.path.isfile(path) or not os.path.isfile(os.path.join(directory, ROWS)):
        raise ValueError(
            f"data.distilled_dir={directory!r} holds no distilled data ({ROWS} and {PROVENANCE}); "
            "make it with python distill.py --teacher=<run folder> --out=<folder>"
        )
    remake = (
        f"make it again with python distill.py --teacher=<run folder> --out={directory} --overwrite"
    )
    with open(path) as f:
        try:
            provenance = json.load(f)
        except ValueError as error:
            raise ValueError(f"{path} is damaged (not valid JSON: {error}); {remake}") from None
    if not isinstance(provenance, dict) or not isinstance(provenance.get("data"), dict):
        raise ValueError(f"{path} is damaged (no 'data' section); {remake}")
    return provenance


def read_rows(directory: str) -> dict[str, np.ndarray]:
    """The arrays of train.npz; a ValueError names the file if it is truncated or damaged."""
    path = os.path.join(directory, ROWS)
    try:
        with np.load(path) as arrays:
            return {key: arrays[key] for key in KEYS}
    except (ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise ValueError(
            f"{path} is damaged ({type(error).__name__}: {error}); make it again with python "
            f"distill.py --teacher=<run folder> --out={directory} --overwrite"
        ) from None


class DistilledTask:
    """A task whose train split is a teacher's outputs; everything else is `base`'s."""

    def __init__(self, base: "Task", config: DataConfig, directory: str):
        self.base, self.config, self.directory = base, config, directory
        self.provenance = read_provenance(directory)
        made_from = self.provenance["data"]
        differs = [
            f"data.{key}: {made_from.get(key, _BEFORE_THE_KEY.get(key))!r} -> "
            f"{getattr(config, key)!r}"
            for key in MATCHED
            if made_from.get(key, _BEFORE_THE_KEY.get(key)) != getattr(config, key)
        ]
        if differs:
            raise ValueError(
                f"data.distilled_dir={directory!r} was distilled from other data: "
                + ", ".join(differs)
            )
        self.rows = read_rows(directory)
        width = self.rows["inputs"].shape[1]
        if width != base.seq_len:
            raise ValueError(
                f"data.distilled_dir={directory!r} holds rows of seq_len {width}, but this data "
                f"config gives seq_len {base.seq_len}: set data.seq_len={width}"
            )

    @property
    def teacher(self) -> str:
        return self.provenance["teacher"]["variant"]

    @property
    def label(self) -> str:
        return f"{self.base.label} (distilled from {self.teacher})"

    @property
    def text_metrics(self) -> bool:
        return self.base.text_metrics

    def random_control(self, max_len: int, vocab_size: int) -> "Task":
        """The base task's random-token control (uniform symbols: no teacher's rows in it)."""
        return self.base.random_control(max_len, vocab_size)

    def __getattr__(self, name: str):
        # name, vocab_size, seq_len, num_symbols, length_preserving, outcome, detokenize,
        # token_label: the base task's.
        if name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)

    def batch(
        self,
        step: int,
        batch_size: int,
        *,
        split: str = "train",
        process_index: int = 0,
        process_count: int = 1,
    ) -> dict[str, np.ndarray]:
        """Train: the teacher's rows by token count (`data.batch_tokens`), else rows
        step * batch_size ... of them, cycling; other splits: the base task's."""
        if split != "train":
            return self.base.batch(
                step, batch_size, split=split,
                process_index=process_index, process_count=process_count,
            )  # fmt: skip
        if step < 0:
            raise ValueError(f"step={step} must be non-negative.")
        if self.config.batch_tokens:
            index = self.token_batches.pairs(step)
            index = index[batching.process_rows(len(index), process_index, process_count)]
            # A bucket of width W holds prompts and decoder rows of at most W: rows of 2W - 1.
            width = min(2 * int(self.token_batches.buckets_N[index].max()) - 1, self.seq_len)
            return {
                key: value[index, :width] if value.ndim == 2 else value[index]
                for key, value in self.rows.items()
            }
        rows = batching.process_rows(batch_size, process_index, process_count)
        count = len(self.rows["inputs"])
        index = ((step * batch_size + np.arange(batch_size)) % count)[rows]
        return {key: value[index] for key, value in self.rows.items()}

    @functools.cached_property
    def token_batches(self) -> token_batches.TokenBatches:
        """The teacher's rows bucketed by length (`data.batch_tokens`)."""
        prefix_N, lengths_N = self.rows["prefix_lengths"], self.rows["lengths"]
        return token_batches.TokenBatches(
            prefix_N, lengths_N - prefix_N + 1, self.config.batch_tokens, self.config.seed
        )

    def training_notes(self) -> list[str]:
        """What training on the teacher's rows should say once: the repeats of token batches."""
        if not self.config.batch_tokens:
            return []
        return [
            f"{self.token_batches.top_up_share():.2%} of an epoch's rows repeat a teacher's row "
            f"to fill a bucket's last batch (batches of up to {self.config.batch_tokens} tokens)"
        ]
