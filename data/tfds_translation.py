"""tfds_translation: sentence pairs of a prepared TFDS translation dataset (data/tfds_data.py
reads it), as `BOS source SEP target EOS` rows with the loss on the target and EOS by default.

Row-count batches (`data.batch_tokens=0`): a pair that does not fit seq_len + 1 tokens is
replaced by another pair drawn at random (up to 16 draws, so the kept pairs lean a little
towards short ones, as filtering would); if none fits, the pair is truncated (the source to at
least half of the room), still ending in EOS. Token-count training batches
(`data.batch_tokens > 0`, data/token_batches.py): every training pair is trained once an epoch;
one that does not fit is truncated as above, never replaced, and the share so cut is said once
(`training_notes`).
"""

import functools

import numpy as np

from data import batching, token_batches
from data.config import DataConfig
from data.tfds_data import MAX_RESAMPLES, _TfdsTask


class TfdsTranslationTask(_TfdsTask):
    """Translation from `data.source_key` to `data.target_key` of a TFDS dataset."""

    text_metrics = True

    def __init__(self, config: DataConfig):
        self.source_key, self.target_key = config.source_key, config.target_key
        super().__init__("tfds_translation", config, (self.source_key, self.target_key))
        self._room = self.seq_len - 2  # seq_len + 1 tokens, less BOS, SEP and EOS.

    @property
    def label(self) -> str:
        # e.g. "bible/en-es (en→es)"
        return f"{self.config.tfds_name} ({self.source_key}→{self.target_key})"

    def _pair(self, record) -> tuple[np.ndarray, np.ndarray]:
        return record[self.source_key], record[self.target_key]

    def _row(
        self, records, record, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, bool]:
        pair = self._pair(record)
        for _ in range(MAX_RESAMPLES):
            if len(pair[0]) + len(pair[1]) <= self._room:
                break
            pair = self._pair(records[int(rng.integers(len(records)))])
        return (*self._truncate(*pair), True)

    def _truncate(self, source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cuts a pair to fit, keeping the whole target if the source keeps half of the room."""
        kept_source = source[: max(self._room - len(target), self._room // 2)]
        return kept_source, target[: self._room - len(kept_source)]

    def _to_batch(
        self, source_BxL, source_lengths_B, target_BxM, target_lengths_B, with_eos_B, width=0
    ) -> dict[str, np.ndarray]:
        return batching.seq2seq_batch(
            source_BxL,
            source_lengths_B,
            target_BxM,
            target_lengths_B,
            seq_len=width or self.seq_len,
            loss_on=self.loss_on,
        )

    def batch(self, step, batch_size, *, split="train", process_index=0, process_count=1):
        """This process's rows of global batch `step`: by token count (`data.batch_tokens`,
        data/token_batches.py) for the train split, else `batch_size` rows."""
        if split != "train" or not self.config.batch_tokens:
            return super().batch(
                step, batch_size, split=split,
                process_index=process_index, process_count=process_count,
            )  # fmt: skip
        index = self.token_batches.pairs(step)
        index = index[batching.process_rows(len(index), process_index, process_count)]
        pairs = [self._truncate(*self._pair(self._records["train"][i])) for i in index]
        source_BxL, source_lengths_B = batching.pad_rows([s for s, _ in pairs])
        target_BxM, target_lengths_B = batching.pad_rows([t for _, t in pairs])
        # A bucket of width W holds prompts and decoder rows of at most W: rows of 2W - 1.
        bucket = self.token_batches.buckets_N[index].max()
        width = min(2 * int(bucket) - 1, self.seq_len)
        return self._to_batch(
            source_BxL, source_lengths_B, target_BxM, target_lengths_B, None, width
        )

    @functools.cached_property
    def token_batches(self) -> token_batches.TokenBatches:
        """The train split's pairs bucketed by length (read and tokenised once, a few seconds)."""
        lengths = self._pair_lengths()
        prompt_N, target_N = lengths[:, 0] + 2, lengths[:, 1]  # BOS source SEP; target.
        self.truncated_share = float(np.mean(prompt_N + target_N + 1 > self.seq_len + 1))
        kept_N = np.array([self._kept_lengths(*row) for row in lengths])
        return token_batches.TokenBatches(
            kept_N[:, 0] + 2, kept_N[:, 1] + 1, self.config.batch_tokens, self.config.seed
        )

    def _pair_lengths(self) -> np.ndarray:
        """[N, 2] token counts (source, target) of the train split's pairs."""
        pairs = (self._pair(record) for record in self._records["train"].every_record())
        return np.array([(len(s), len(t)) for s, t in pairs], np.int64).reshape(-1, 2)

    def _kept_lengths(self, source_len: int, target_len: int) -> tuple[int, int]:
        """(source, target) lengths of a pair after `_truncate`."""
        kept = self._truncate(np.zeros(source_len), np.zeros(target_len))
        return len(kept[0]), len(kept[1])

    def training_notes(self) -> list[str]:
        """What training on this data should say once: the pairs cut to fit, the repeats."""
        if not self.config.batch_tokens:
            return []
        batches = self.token_batches
        return [
            f"{self.truncated_share:.2%} of the training pairs are cut to fit data.seq_len="
            f"{self.seq_len}; {batches.top_up_share():.2%} of an epoch's rows repeat a pair "
            f"to fill a bucket's last batch (batches of up to {self.config.batch_tokens} tokens)"
        ]
