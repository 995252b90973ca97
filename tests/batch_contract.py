"""The batch contract every task honours (data/__init__.py), checked row by row."""

import numpy as np

import data
from data import vocab


def make(config, **overrides):
    """The task of `config` with `overrides` set on it."""
    for key, value in overrides.items():
        config[key] = value
    return data.make_task(config)


def full_sequences(batch):
    """The seq_len + 1 token sequences that inputs and targets were cut from."""
    return np.concatenate([batch["inputs"], batch["targets"][:, -1:]], axis=1)


def split_rows(batch):
    """(source ids, target ids) per row, read through prefix_lengths and lengths."""
    rows = []
    for seq, prefix, length in zip(
        full_sequences(batch), batch["prefix_lengths"], batch["lengths"], strict=True
    ):
        rows.append((seq[1 : prefix - 1], seq[prefix:length]))
    return rows


def check_contract(task, batch, batch_size):
    """Shapes, dtypes, the shift relation, lengths, BOS/SEP/EOS placement and PAD padding."""
    expected = {"inputs": np.int32, "targets": np.int32, "loss_mask": np.float32}
    for key, dtype in expected.items():
        assert batch[key].shape == (batch_size, task.seq_len) and batch[key].dtype == dtype
    for key in ("lengths", "prefix_lengths"):
        assert batch[key].shape == (batch_size,) and batch[key].dtype == np.int32
    np.testing.assert_array_equal(batch["inputs"][:, 1:], batch["targets"][:, :-1])
    # lengths = len(seq) - 1, the positions with a real target (a short row's EOS is in inputs).
    np.testing.assert_array_equal((batch["targets"] != vocab.PAD).sum(1), batch["lengths"])
    seq = full_sequences(batch)
    assert (seq[:, 0] == vocab.BOS).all()
    for row, prefix, length in zip(seq, batch["prefix_lengths"], batch["lengths"], strict=True):
        assert (row[length + 1 :] == vocab.PAD).all()
        assert (row[1:length] != vocab.PAD).all()
        if prefix > 1:
            assert row[prefix - 1] == vocab.SEP
        assert (row[1 : prefix - 1] >= vocab.FIRST_SYMBOL).all()
        assert (row[prefix:length] >= vocab.FIRST_SYMBOL).all()
        assert (row[1:] < task.vocab_size).all()
