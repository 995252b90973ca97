"""Text <-> token ids for the TFDS tasks: raw bytes, or a SentencePiece model trained on the data.

Both kinds give ordinary ids from FIRST_SYMBOL up (data/vocab.py), so a model's vocabulary is the
five special ids plus `num_symbols`:

- "bytes": byte b is id FIRST_SYMBOL + b (256 symbols); nothing to train, any text round-trips.
- "sentencepiece": piece p is id FIRST_SYMBOL + p, for `vocab_size` pieces (data.vocab_size; 0
  means DEFAULT_VOCAB_SIZE), with piece 0 the unknown piece and piece 1 the newline. The model is
  trained once, on the training split's text (both sides of a translation set: one joint
  vocabulary), and stored as a file beside the prepared data; later runs load it. Training is
  deterministic (a unigram model, no sampling, one thread; 4000 pieces on bible/en-es: about
  10 s). Text is neither normalised nor stripped of spaces, so decode(encode(s)) == s whenever
  the training text holds every character of s; another character decodes as " ⁇ ".
"""

import io
import os
import tempfile
from collections.abc import Callable, Iterable
from typing import Protocol

import numpy as np
import sentencepiece

from data import vocab

TOKENIZERS = ("bytes", "sentencepiece")
DEFAULT_VOCAB_SIZE = 4000
# SentencePiece skips training sentences over 4192 bytes; 1000 characters are at most 4000 bytes.
MAX_TRAINING_CHARS = 1000


class Tokenizer(Protocol):
    """Ordinary token ids (>= FIRST_SYMBOL, < FIRST_SYMBOL + num_symbols) of text, and back."""

    num_symbols: int

    def encode(self, text: str) -> np.ndarray: ...  # int32 ids, without specials.

    def decode(self, ids) -> str: ...  # Specials and out-of-range ids are dropped.


def check_tokenizer(name: str) -> None:
    """Raises a one-line ValueError naming the choices when `name` is not a tokenizer."""
    if name not in TOKENIZERS:
        raise ValueError(f"data.tokenizer={name!r}; expected one of {TOKENIZERS}.")


class ByteTokenizer:
    """UTF-8 bytes: byte b is id FIRST_SYMBOL + b."""

    num_symbols = vocab.NUM_BYTES

    def encode(self, text: str) -> np.ndarray:
        return vocab.bytes_to_ids(text.encode("utf-8"))

    def decode(self, ids) -> str:
        return vocab.ids_to_bytes(ids).decode("utf-8", errors="replace")


class SentencePieceTokenizer:
    """A trained SentencePiece model: piece p is id FIRST_SYMBOL + p."""

    def __init__(self, model_path: str):
        self.model_path = model_path
        self._processor = sentencepiece.SentencePieceProcessor(model_file=model_path)
        self.num_symbols = self._processor.get_piece_size()

    def encode(self, text: str) -> np.ndarray:
        pieces = self._processor.encode(text)
        return np.asarray(pieces, dtype=np.int32).reshape(-1) + vocab.FIRST_SYMBOL

    def decode(self, ids) -> str:
        ids = np.asarray(ids).reshape(-1)
        pieces = ids[(ids >= vocab.FIRST_SYMBOL) & (ids < vocab.FIRST_SYMBOL + self.num_symbols)]
        return self._processor.decode((pieces - vocab.FIRST_SYMBOL).tolist())


def sentencepiece_tokenizer(
    model_path: str, vocab_size: int, texts: Callable[[], Iterable[str]], what: str = "the data"
) -> SentencePieceTokenizer:
    """The model at `model_path`, trained there first on `texts()` if it does not exist yet.

    The file appears whole or not at all (written to a temporary file, then renamed), so a run
    that is interrupted, or that trains at the same time as another, never reads half a model.
    """
    if not os.path.exists(model_path):
        folder = os.path.dirname(model_path) or "."
        try:  # Fails before training when the folder is not writable.
            os.makedirs(folder, exist_ok=True)
            handle, staging = tempfile.mkstemp(dir=folder, suffix=".tmp")
        except OSError as error:
            raise PermissionError(
                f"Cannot write the SentencePiece model in {folder} ({error.strerror}); point "
                "data.tokenizer_dir at a writable folder."
            ) from error
        print(f"Training a {vocab_size}-piece SentencePiece model on {what}: {model_path}")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(train_sentencepiece(texts(), vocab_size))
            os.replace(staging, model_path)
        finally:
            if os.path.exists(staging):
                os.remove(staging)
    return SentencePieceTokenizer(model_path)


def train_sentencepiece(texts: Iterable[str], vocab_size: int) -> bytes:
    """The serialised model of `vocab_size` pieces trained on `texts`."""
    model = io.BytesIO()
    try:
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=_training_chunks(texts),
            model_writer=model,
            vocab_size=vocab_size,
            model_type="unigram",
            character_coverage=1.0,
            # So that decode(encode(s)) == s, spaces and newlines (documents have them) included.
            normalization_rule_name="identity",
            remove_extra_whitespaces=False,
            user_defined_symbols=["\n"],
            # Ids 0..4 are the tasks' own specials; SentencePiece keeps only its unknown piece.
            unk_id=0,
            bos_id=-1,
            eos_id=-1,
            pad_id=-1,
            input_sentence_size=2_000_000,
            shuffle_input_sentence=False,  # Deterministic: the first sentences, not a sample.
            num_threads=1,  # The model depends on the thread count: one gives it on any machine.
            minloglevel=2,
        )
    except RuntimeError as error:  # e.g. "Vocabulary size too high (9000). Please set it ..."
        reason = str(error).split("] ")[-1].strip() or str(error).strip() or type(error).__name__
        raise ValueError(f"data.vocab_size={vocab_size}: {reason}") from error
    return model.getvalue()


def _training_chunks(texts: Iterable[str]) -> Iterable[str]:
    """`texts` cut to SentencePiece's length limit (tiny_shakespeare is one 1 MB document)."""
    for text in texts:
        for start in range(0, len(text), MAX_TRAINING_CHARS):
            if (chunk := text[start : start + MAX_TRAINING_CHARS]).strip():
                yield chunk
