"""data/tokenizer.py: byte and SentencePiece ids round-trip, stay in range, drop specials on the way
back; a SentencePiece model is trained once, written whole, and reused; clear errors."""

import os

import numpy as np
import pytest

import data
from data import tokenizer, vocab

TEXTS = [
    "In the beginning, God created the heavens and the earth.",
    "Porque de tal manera amó Dios al mundo, que ha dado á su Hijo unigénito.",
    "The earth was formless and empty. Darkness was on the surface of the deep.",
    "Y la tierra estaba desordenada y vacía, y las tinieblas sobre la haz del abismo.",
] * 5
SPECIALS = [vocab.PAD, vocab.BOS, vocab.EOS, vocab.SEP, vocab.MASK]


def test_bytes_round_trip_and_drop_specials():
    bytes_tokenizer = tokenizer.ByteTokenizer()
    ids = bytes_tokenizer.encode("Ça va? ¿Qué tal?")
    assert ids.dtype == np.int32 and bytes_tokenizer.num_symbols == 256
    np.testing.assert_array_equal(ids, vocab.bytes_to_ids("Ça va? ¿Qué tal?".encode()))
    with_specials = np.concatenate([[vocab.BOS], ids, [vocab.SEP, vocab.EOS, vocab.PAD, 999]])
    assert bytes_tokenizer.decode(with_specials) == "Ça va? ¿Qué tal?"
    assert bytes_tokenizer.decode(ids[:1]) == "\ufffd"  # Half a character: replaced, no error.


@pytest.fixture
def model_path(tmp_path):
    return str(tmp_path / "sp" / "sentencepiece_60_text_train.model")


def test_sentencepiece_round_trips_within_its_ids(model_path):
    sp = tokenizer.sentencepiece_tokenizer(model_path, 60, lambda: TEXTS)
    assert sp.num_symbols == 60
    for text in TEXTS[:4]:
        ids = sp.encode(text)
        assert ids.dtype == np.int32 and len(ids) < len(text.encode())
        assert ((ids >= vocab.FIRST_SYMBOL) & (ids < vocab.FIRST_SYMBOL + 60)).all()
        assert sp.decode(ids) == text
        noisy = np.concatenate([SPECIALS, ids[:3], [vocab.EOS, vocab.FIRST_SYMBOL + 60], ids[3:]])
        assert sp.decode(noisy) == text
    spaced = "  the earth.\nThe deep,  God \n\n"  # Spaces and newlines are kept as they are.
    assert sp.decode(sp.encode(spaced)) == spaced
    assert sp.decode(sp.encode("Zebra")) == " ⁇ ebra"  # "Z" is not in the training text.


def test_sentencepiece_trains_once_then_reuses_the_file(model_path, monkeypatch, capsys):
    first = tokenizer.sentencepiece_tokenizer(model_path, 60, lambda: TEXTS, what="the texts")
    assert "Training a 60-piece SentencePiece model on the texts" in capsys.readouterr().out
    assert os.listdir(os.path.dirname(model_path)) == [os.path.basename(model_path)]

    def no_training(*args):
        raise AssertionError("trained again")

    monkeypatch.setattr(tokenizer, "train_sentencepiece", no_training)
    again = tokenizer.sentencepiece_tokenizer(model_path, 60, lambda: TEXTS)
    assert capsys.readouterr().out == ""
    np.testing.assert_array_equal(again.encode(TEXTS[1]), first.encode(TEXTS[1]))


def test_sentencepiece_training_is_deterministic():
    assert tokenizer.train_sentencepiece(TEXTS, 60) == tokenizer.train_sentencepiece(TEXTS, 60)


def test_an_interrupted_training_leaves_no_file(model_path, monkeypatch):
    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(tokenizer, "train_sentencepiece", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tokenizer.sentencepiece_tokenizer(model_path, 60, lambda: TEXTS)
    assert os.listdir(os.path.dirname(model_path)) == []


def test_clear_errors(tmp_path, data_config):
    with pytest.raises(ValueError, match=r"data.tokenizer='bpe'; expected one of \('bytes', 'sen"):
        tokenizer.check_tokenizer("bpe")
    data_config.tokenizer = "bpe"
    with pytest.raises(ValueError, match=r"data.tokenizer='bpe'"):
        data.make_task(data_config)
    data_config.tokenizer = "sentencepiece"
    with pytest.raises(ValueError, match="is for the TFDS tasks .* has its own symbols"):
        data.make_task(data_config)
    with pytest.raises(ValueError, match=r"data.vocab_size=500: Vocabulary size too high"):
        tokenizer.train_sentencepiece(TEXTS, 500)
    blocked = tmp_path / "a_file"
    blocked.write_text("")
    with pytest.raises(PermissionError, match="Cannot write .* point data.tokenizer_dir at"):
        tokenizer.sentencepiece_tokenizer(str(blocked / "m.model"), 60, lambda: TEXTS)
