"""Turns token rows into the batch dict every task returns, and slices it per process.

A sequence is `BOS source... SEP target... EOS`, right-padded with PAD to S = seq_len + 1 tokens;
`inputs` = seq[:-1] and `targets` = seq[1:]. Shape legend: B rows, S = seq_len + 1 tokens of a
sequence, T = seq_len positions of inputs/targets, L source width, M target width.
"""

import zlib

import numpy as np

from data import vocab

SPLITS = ("train", "eval")
LOSS_ON = ("target", "all")


def check_split(split: str) -> None:
    """Raises a ValueError naming the choices when `split` is not one of them."""
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; expected one of {SPLITS}.")


def split_id(split: str) -> int:
    """A stable integer naming `split`, so that each split seeds its own stream."""
    check_split(split)
    # crc32 rather than hash(): Python salts str hashes per process, which would break resume.
    return zlib.crc32(split.encode())


def check_loss_on(loss_on: str) -> None:
    """Raises a ValueError naming the choices when `loss_on` is not one of them."""
    if loss_on not in LOSS_ON:
        raise ValueError(f"data.loss_on={loss_on!r}; expected one of {LOSS_ON}.")


def process_rows(batch_size: int, process_index: int, process_count: int) -> slice:
    """The contiguous rows of a global batch of `batch_size` that process `process_index` owns."""
    if process_count < 1 or not 0 <= process_index < process_count:
        raise ValueError(
            f"Need 0 <= process_index ({process_index}) < process_count ({process_count})."
        )
    if batch_size < 1 or batch_size % process_count:
        raise ValueError(
            f"Global batch_size={batch_size} must be positive and divisible by "
            f"process_count={process_count}."
        )
    rows = batch_size // process_count
    return slice(process_index * rows, (process_index + 1) * rows)


def pad_rows(rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Right-pads 1-D int arrays into (rows_BxL, lengths_B)."""
    lengths_B = np.array([len(row) for row in rows], dtype=np.int32)
    rows_BxL = np.full((len(rows), max(lengths_B.max(initial=0), 1)), vocab.PAD, dtype=np.int32)
    for i, row in enumerate(rows):
        rows_BxL[i, : len(row)] = row
    return rows_BxL, lengths_B


def _place(
    seq_BxS: np.ndarray, tokens_BxW: np.ndarray, start_B: np.ndarray, lengths_B: np.ndarray
) -> np.ndarray:
    """Writes tokens_BxW[b, :lengths_B[b]] at seq positions start_B[b]... (vectorised)."""
    if tokens_BxW.shape[1] == 0:
        return seq_BxS
    offset_BxS = np.arange(seq_BxS.shape[1])[None, :] - start_B[:, None]
    inside_BxS = (offset_BxS >= 0) & (offset_BxS < lengths_B[:, None])
    gathered_BxS = np.take_along_axis(
        tokens_BxW, np.clip(offset_BxS, 0, tokens_BxW.shape[1] - 1), axis=1
    )
    return np.where(inside_BxS, gathered_BxS, seq_BxS)


def assemble(
    source_BxL: np.ndarray,
    source_lengths_B: np.ndarray,
    target_BxM: np.ndarray,
    target_lengths_B: np.ndarray,
    *,
    seq_len: int,
    with_sep: bool = True,
    with_eos_B: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Builds `BOS source [SEP] target [EOS]` rows from token ids.

    Returns:
      (seq_BxS, prefix_lengths_B, lengths_B): the PAD-padded sequences of seq_len + 1 tokens, the
      number of prompt tokens (`BOS source [SEP]`), and len(seq) - 1 (the positions with a
      non-pad target).
    """
    batch = source_BxL.shape[0]
    if with_eos_B is None:
        with_eos_B = np.ones(batch, dtype=bool)
    prefix_lengths_B = (1 + source_lengths_B + int(with_sep)).astype(np.int32)
    eos_position_B = prefix_lengths_B + target_lengths_B
    total_B = eos_position_B + with_eos_B
    if batch and total_B.max() > seq_len + 1:
        raise ValueError(
            f"A sequence of {total_B.max()} tokens does not fit seq_len={seq_len} "
            f"(which allows seq_len + 1 = {seq_len + 1} tokens)."
        )
    position_BxS = np.broadcast_to(np.arange(seq_len + 1)[None, :], (batch, seq_len + 1))
    seq_BxS = np.where(position_BxS == 0, vocab.BOS, vocab.PAD)
    seq_BxS = _place(seq_BxS, source_BxL, np.ones(batch, np.int32), source_lengths_B)
    if with_sep:
        seq_BxS = np.where(position_BxS == prefix_lengths_B[:, None] - 1, vocab.SEP, seq_BxS)
    seq_BxS = _place(seq_BxS, target_BxM, prefix_lengths_B, target_lengths_B)
    is_eos_BxS = (position_BxS == eos_position_B[:, None]) & with_eos_B[:, None]
    seq_BxS = np.where(is_eos_BxS, vocab.EOS, seq_BxS).astype(np.int32)
    return seq_BxS, prefix_lengths_B, (total_B - 1).astype(np.int32)


def make_batch(
    seq_BxS: np.ndarray,
    prefix_lengths_B: np.ndarray,
    lengths_B: np.ndarray,
    loss_start_B: np.ndarray,
    loss_stop_B: np.ndarray,
) -> dict[str, np.ndarray]:
    """The batch dict; loss_mask is 1.0 on input positions [loss_start, loss_stop) of each row."""
    position_T = np.arange(seq_BxS.shape[1] - 1)[None, :]
    loss_mask_BxT = (position_T >= loss_start_B[:, None]) & (position_T < loss_stop_B[:, None])
    return {
        "inputs": np.ascontiguousarray(seq_BxS[:, :-1], dtype=np.int32),
        "targets": np.ascontiguousarray(seq_BxS[:, 1:], dtype=np.int32),
        "loss_mask": loss_mask_BxT.astype(np.float32),
        "lengths": lengths_B.astype(np.int32),
        "prefix_lengths": prefix_lengths_B.astype(np.int32),
    }


def seq2seq_batch(
    source_BxL: np.ndarray,
    source_lengths_B: np.ndarray,
    target_BxM: np.ndarray,
    target_lengths_B: np.ndarray,
    *,
    seq_len: int,
    loss_on: str,
) -> dict[str, np.ndarray]:
    """Batch of `BOS source SEP target EOS` rows; "target" puts the loss on target + EOS only."""
    seq_BxS, prefix_lengths_B, lengths_B = assemble(
        source_BxL, source_lengths_B, target_BxM, target_lengths_B, seq_len=seq_len
    )
    # targets[prefix_len - 1] is the first target token: the loss starts where the prompt ends.
    loss_start_B = prefix_lengths_B - 1 if loss_on == "target" else np.zeros_like(lengths_B)
    return make_batch(seq_BxS, prefix_lengths_B, lengths_B, loss_start_B, lengths_B)


def bucket_width(width: int, ladder: tuple[int, ...]) -> int:
    """The smallest width of `ladder` (ascending) that holds `width`; past its end, `width`
    rounded up to a multiple of the last rung's step (so a few long batches compile apart)."""
    for rung in ladder:
        if width <= rung:
            return rung
    step = ladder[-1] - ladder[-2] if len(ladder) > 1 else ladder[-1]
    return ladder[-1] + -(-(width - ladder[-1]) // step) * step


# Bucket widths: each compiles its own train step, so there are few; measured on bible/en-es with
# 4000 pieces, bucketing pairs by the wider side on this ladder leaves 85% of the positions
# useful in 11 buckets (data/token_batches.py).
WIDTH_LADDER = (16, 24, 32, 40, 48, 56, 64, 80, 96, 128, 192, 256)


def split_seq2seq(
    batch: dict[str, np.ndarray], ladder: tuple[int, ...] = WIDTH_LADDER
) -> dict[str, np.ndarray]:
    """A one-row batch split for an encoder-decoder: each row's prompt `BOS source SEP` apart
    from its decoder row `SEP target EOS`, both padded to the width of `ladder` that holds the
    widest of either (so that a bucket of data/token_batches.py compiles one step).

    The decoder rows are the batch's own from each row's SEP on (prefix length 1): inputs,
    targets, loss_mask and lengths keep their meaning (the module docstring), shifted; `source`
    [B, S] and `source_lengths` [B] are the prompts. A batch that puts loss on a prompt
    (data.loss_on="all") cannot be split: the decoder never reads the prompt.
    """
    inputs_BxT, prefix_B, lengths_B = batch["inputs"], batch["prefix_lengths"], batch["lengths"]
    B, T = inputs_BxT.shape
    cols_1xT = np.arange(T)[None, :]
    if np.any((batch["loss_mask"] > 0) & (cols_1xT < prefix_B[:, None] - 1)):
        raise ValueError(
            "An encoder-decoder reads the source apart from the target: it cannot take a loss on "
            "the prompt (data.loss_on='all'); use data.loss_on='target'."
        )
    decoder_lengths_B = lengths_B - prefix_B + 1
    widest = max(int(prefix_B.max(initial=1)), int(decoder_lengths_B.max(initial=1)))
    S = U = min(bucket_width(widest, ladder), T)  # One width: a bucket's (token_batches.py).
    source_BxS = np.where(cols_1xT[:, :S] < prefix_B[:, None], inputs_BxT[:, :S], vocab.PAD)
    # Decoder column j is row column prefix_len - 1 + j; columns past the row read as padding.
    index_BxU = prefix_B[:, None] - 1 + np.arange(U)[None, :]
    inside_BxU = index_BxU < T
    index_BxU = np.minimum(index_BxU, T - 1)

    def shifted(values_BxT, pad):
        return np.where(inside_BxU, np.take_along_axis(values_BxT, index_BxU, axis=1), pad)

    return {
        "inputs": shifted(inputs_BxT, vocab.PAD).astype(np.int32),
        "targets": shifted(batch["targets"], vocab.PAD).astype(np.int32),
        "loss_mask": shifted(batch["loss_mask"], 0.0).astype(np.float32),
        "lengths": decoder_lengths_B.astype(np.int32),
        "prefix_lengths": np.ones((B,), np.int32),
        "source": source_BxS.astype(np.int32),
        "source_lengths": prefix_B.astype(np.int32),
    }
