"""Text and translation tasks read from prepared TFDS datasets, without TensorFlow.

Datasets are read with `tfds` builders' array_record data sources (random access) and grain's
MapDataset on top: `source.seed(s).shuffle().repeat().random_map(make_row)`, where element g is a
pure function of g. Row r of global batch `step` is element step * batch_size + r, so a batch is a
pure function of (seed, split, step), and every epoch sees each example once, in a new order.
Text becomes token ids through `task.tokenizer` (data/tokenizer.py, chosen by data.tokenizer):
bytes (byte b is token FIRST_SYMBOL + b) or SentencePiece pieces; `task.detokenize(ids)` inverts
it. Lengths below count tokens.

- tfds_text: language-model rows `BOS tokens...` with no source (prefix_lengths = 1) and the loss
  on every non-pad target. A document that fits (at most seq_len - 1 tokens) is taken whole and
  ends with EOS; a longer one gives a window of seq_len tokens at a uniformly random offset, drawn
  per element (so per (seed, split, step, row)), without EOS. This handles datasets that hold one
  huge document per split (tiny_shakespeare) as well as sentence-level ones (lm1b). Rows are not
  packed, because packing would need a segment mask the model contract does not carry.
- tfds_translation (data/tfds_translation.py): `BOS source SEP target EOS` rows of sentence
  pairs, by row count or by token count.

Prepare datasets once (scripts/prepare_data.py: with internet for TFDS's own sets, offline for
bible/...); reading them here never touches the network.
"""

import functools
import importlib
import os
import re

import grain
import numpy as np
import tensorflow_datasets as tfds

from data import batching, bible, synthetic, tokenizer, vocab
from data.config import DataConfig

DEFAULT_SEQ_LEN = 256
MAX_RESAMPLES = 16
MAX_TOKENIZER_RECORDS = 1_000_000  # Training records of a SentencePiece model (lm1b has 30 M).
# TFDS registers a builder only once its family module is imported, and imports those lazily:
# without this, tfds.builder("wmt14_translate/de-en") reports that the dataset does not exist.
_BUILDER_FAMILIES = ("tensorflow_datasets.text", "tensorflow_datasets.translate")


def missing_config(name: str, flag: str) -> ValueError | None:
    """The one-line error for a config the TFDS family lacks (TFDS's runs to many lines)."""
    family, _, config = name.partition("/")
    try:
        configs = [c.name for c in getattr(tfds.builder_cls(family), "BUILDER_CONFIGS", [])]
    except tfds.core.registered.DatasetNotFoundError:
        return None
    if not config or config in configs:
        return None
    return ValueError(f"{flag}={name!r}: the TFDS dataset {family!r} has no config {config!r}; "
                      f"its configs are {configs}.")  # fmt: skip


def load_builder(name: str, data_dir: str) -> tfds.core.DatasetBuilder:
    """The prepared builder `name` in `data_dir` ("" = TFDS default); clear errors if absent."""
    for module in _BUILDER_FAMILIES:
        importlib.import_module(module)
    try:
        builder = tfds.builder(name, data_dir=data_dir or None)
    except tfds.core.registered.DatasetNotFoundError as error:
        raise ValueError(f"data.tfds_name={name!r} is not a known TFDS dataset.") from error
    except ValueError as error:  # TFDS's own, many lines long: a config the family lacks.
        raise missing_config(name, "data.tfds_name") or error from error
    if not builder.is_prepared():
        if builder.name == bible.Bible.name:  # Prepared from Debian packages: no internet.
            raise FileNotFoundError(
                f"TFDS dataset {name!r} is not prepared in {builder.data_dir_root}. Prepare it "
                f"once, offline, with `python scripts/prepare_data.py --name={name}` (add "
                "--data_dir=DIR and set data.data_dir=DIR for another folder than "
                "$TFDS_DATA_DIR or ~/tensorflow_datasets)."
            )
        raise FileNotFoundError(
            f"TFDS dataset {name!r} is not prepared in {builder.data_dir_root} (looked for "
            f"{builder.data_dir}). Point the config key data.data_dir at the folder that holds it "
            "(data.data_dir='' means $TFDS_DATA_DIR or ~/tensorflow_datasets), or prepare it once "
            "on a machine with internet: `pip install -r requirements-data.txt && python "
            f"scripts/prepare_data.py --name={name} --data_dir=DIR`, then copy DIR here."
        )
    file_format = builder.info.file_format
    if file_format not in (tfds.core.FileFormat.ARRAY_RECORD, tfds.core.FileFormat.PARQUET):
        raise ValueError(
            f"TFDS dataset {name!r} in {builder.data_dir} is stored as {file_format}, which has no "
            "random access; prepare it again with file_format='array_record' "
            "(scripts/prepare_data.py does)."
        )
    return builder


def _open_split(builder: tfds.core.DatasetBuilder, split: str, config_key: str):
    """The random-access data source of `split`, with an error naming the config key if absent."""
    if split not in builder.info.splits:
        raise ValueError(
            f"data.{config_key}={split!r} is not a split of {builder.name}; it has "
            f"{sorted(builder.info.splits)}."
        )
    source = builder.as_data_source(split=split)
    if not len(source):
        raise ValueError(f"data.{config_key}={split!r} of {builder.name} has no examples.")
    return source


def _as_text(value) -> str:
    return value if isinstance(value, str) else bytes(value).decode("utf-8")


def make_tokenizer(
    config: DataConfig, builder: tfds.core.DatasetBuilder, keys: tuple[str, ...]
) -> tokenizer.Tokenizer:
    """The tokenizer data.tokenizer names; a SentencePiece model is trained on the train split's
    `keys` (one joint vocabulary) the first time, and stored beside the prepared data (or under
    data.tokenizer_dir, in a folder named like the dataset's)."""
    tokenizer.check_tokenizer(config.tokenizer)
    if config.tokenizer == "bytes":
        if config.vocab_size:
            raise ValueError(
                f"data.vocab_size={config.vocab_size} is for data.tokenizer='sentencepiece'; "
                "bytes have 256 symbols (leave data.vocab_size=0)."
            )
        return tokenizer.ByteTokenizer()
    vocab_size = int(config.vocab_size) or tokenizer.DEFAULT_VOCAB_SIZE
    split = config.train_split
    source = _open_split(builder, split, "train_split")
    stem = "_".join([f"sentencepiece_{vocab_size}", "-".join(keys), re.sub(r"\W+", "-", split)])
    folder = os.fspath(builder.data_dir)
    if config.tokenizer_dir:
        folder = os.path.join(os.path.expanduser(config.tokenizer_dir), builder.info.full_name)

    def texts():
        # The first records of a split that TFDS shuffled as it wrote: enough for a vocabulary.
        for start in range(0, min(len(source), MAX_TOKENIZER_RECORDS), 4096):
            stop = min(start + 4096, len(source), MAX_TOKENIZER_RECORDS)
            for record in source.__getitems__(list(range(start, stop))):  # Batched: 2x faster.
                yield from (_as_text(record[key]) for key in keys)

    return tokenizer.sentencepiece_tokenizer(
        os.path.join(folder, stem + ".model"),
        vocab_size,
        texts,
        what=f"{builder.info.full_name} {split} ({', '.join(keys)})",
    )


class _EncodedSource:
    """Random access to the token ids (of `keys`) of a TFDS data source's records; keeps the most
    recently read ones."""

    def __init__(self, source, encode, keys: tuple[str, ...], max_records: int = 64):
        self._source, self._encode, self._keys = source, encode, keys
        # Why: tiny_shakespeare holds one 1 MB document per split, and reading, decoding and
        # tokenising it again for every row costs a millisecond (bytes) or more a row.
        self._read = functools.lru_cache(maxsize=max_records)(self._read_uncached)

    def _read_uncached(self, index: int) -> dict[str, np.ndarray]:
        record = self._source[index]
        return {key: self._encode(_as_text(record[key])) for key in self._keys}

    def __len__(self) -> int:
        return len(self._source)

    def every_record(self):
        """Every record's token ids, in order, read in batches (2x faster than one by one);
        not kept."""
        for start in range(0, len(self._source), 4096):
            indices = list(range(start, min(start + 4096, len(self._source))))
            for record in self._source.__getitems__(indices):
                yield {key: self._encode(_as_text(record[key])) for key in self._keys}

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return self._read(int(index))


class _TfdsTask:
    """What the text and translation tasks share: sources per split, seeding, and batching."""

    length_preserving = False
    text_metrics = False  # Scored on token ids (loss); translation adds BLEU and chrF on text.

    def __init__(self, name: str, config: DataConfig, keys: tuple[str, ...]):
        self.name, self.config = name, config
        self.seq_len = int(config.seq_len) or DEFAULT_SEQ_LEN
        self.loss_on = config.loss_on
        batching.check_loss_on(self.loss_on)
        if self.seq_len < 4:
            raise ValueError(f"data.seq_len={self.seq_len} is too small; use at least 4.")
        if config.seed < 0:
            raise ValueError(f"data.seed={config.seed} must be non-negative.")
        builder = load_builder(config.tfds_name, config.data_dir)
        self.tokenizer = make_tokenizer(config, builder, keys)
        self.num_symbols = self.tokenizer.num_symbols
        self.vocab_size = vocab.vocab_size(self.num_symbols)
        sources = {
            split: _EncodedSource(
                _open_split(builder, getattr(config, key), key), self.tokenizer.encode, keys
            )
            for split, key in (("train", "train_split"), ("eval", "eval_split"))
        }
        self._datasets, self._records = {}, sources
        self._split_sizes = {split: len(records) for split, records in sources.items()}
        for split, records in sources.items():
            # Fold the split into the seed so that train and eval draw different streams, and
            # fit it in 32 bits as grain's shuffle requires.
            split_seed = int(
                np.random.SeedSequence([config.seed, batching.split_id(split)]).generate_state(1)[0]
            )
            self._datasets[split] = (
                grain.MapDataset.source(records)
                .seed(split_seed)
                .shuffle()
                .repeat()
                .random_map(functools.partial(self._row, records))
            )

    def _row(
        self, records, record, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, bool]:
        """(source ids, target ids, whether EOS ends the row) of one element of `records`."""
        raise NotImplementedError

    def split_size(self, split: str) -> int:
        """How many records `split` holds (its batches cycle through them, reshuffled each time)."""
        batching.check_split(split)
        return self._split_sizes[split]

    def detokenize(self, ids) -> str:
        """The text of token ids; special tokens (and ids outside the vocabulary) are dropped."""
        return self.tokenizer.decode(ids)

    def token_label(self, token: int) -> str:
        """One token as people read it: its text (a subword piece, a byte), or its symbol."""
        return self.detokenize([token]).strip() or vocab.render([token], self.num_symbols)

    def random_control(self, max_len: int, vocab_size: int) -> synthetic.SyntheticTask:
        """The `random` task over every ordinary id of a model's vocabulary (256 bytes, or the
        subword pieces), with lengths fitted to a model of `max_len` positions."""
        return synthetic.random_control(self.config, max_len, vocab_size - vocab.FIRST_SYMBOL)

    def outcome(self, source: np.ndarray, generated: np.ndarray) -> None:
        """No multi-modal grading (correct, mixed, wrong) for real text."""
        del source, generated

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
        batching.check_split(split)
        if step < 0:
            raise ValueError(f"step={step} must be non-negative.")
        dataset = self._datasets[split]
        elements = [dataset[step * batch_size + row] for row in range(rows.start, rows.stop)]
        source_BxL, source_lengths_B = batching.pad_rows([s for s, _, _ in elements])
        target_BxM, target_lengths_B = batching.pad_rows([t for _, t, _ in elements])
        with_eos_B = np.array([eos for _, _, eos in elements], dtype=bool)
        return self._to_batch(
            source_BxL, source_lengths_B, target_BxM, target_lengths_B, with_eos_B
        )

    def _to_batch(
        self, source_BxL, source_lengths_B, target_BxM, target_lengths_B, with_eos_B
    ) -> dict[str, np.ndarray]:
        raise NotImplementedError


class TfdsTextTask(_TfdsTask):
    """Language modelling on token windows of a TFDS text dataset (`data.text_key`)."""

    def __init__(self, config: DataConfig):
        self.text_key = config.text_key
        super().__init__("tfds_text", config, (config.text_key,))

    @property
    def label(self) -> str:
        return f"{self.config.tfds_name} ({self.text_key})"  # e.g. "tiny_shakespeare (text)"

    def _row(
        self, records, record, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, bool]:
        text = record[self.text_key]
        nothing = text[:0]
        if len(text) <= self.seq_len - 1:  # BOS + text + EOS fits seq_len + 1 tokens.
            return nothing, text, True
        start = int(rng.integers(0, len(text) - self.seq_len + 1))
        return nothing, text[start : start + self.seq_len], False

    def _to_batch(
        self, source_BxL, source_lengths_B, target_BxM, target_lengths_B, with_eos_B
    ) -> dict[str, np.ndarray]:
        seq_BxS, prefix_lengths_B, lengths_B = batching.assemble(
            source_BxL[:, :0],
            source_lengths_B,
            target_BxM,
            target_lengths_B,
            seq_len=self.seq_len,
            with_sep=False,
            with_eos_B=with_eos_B,
        )
        # No source: the loss covers every non-pad target whatever data.loss_on says.
        return batching.make_batch(
            seq_BxS, prefix_lengths_B, lengths_B, np.zeros_like(lengths_B), lengths_B
        )
