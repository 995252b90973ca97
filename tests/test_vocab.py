"""Token ids and their rendering (data/vocab.py)."""

import numpy as np

from data import vocab


def test_render_shows_specials_letters_and_bytes():
    ids = [vocab.BOS, 5, 6, vocab.SEP, 5, vocab.EOS, vocab.PAD]
    assert vocab.render(ids, 8) == "^ab|a$·"
    assert vocab.render([vocab.BOS, 5 + ord("h"), 5 + ord("i")], 256) == "^hi"
    assert vocab.render([vocab.MASK, 5 + 60], 64) == "_<65>"


def test_bytes_round_trip_and_specials_are_dropped():
    ids = vocab.bytes_to_ids("Ça va".encode())
    assert ids.min() >= vocab.FIRST_SYMBOL
    assert vocab.ids_to_bytes(np.concatenate([[vocab.BOS], ids, [vocab.EOS]])) == "Ça va".encode()
