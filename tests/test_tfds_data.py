"""data/tfds_data.py: text windows and translation pairs from tiny TFDS sets built here, as bytes
and as SentencePiece pieces, determinism, process slices and clear errors for missing or bad TFDS
configs."""

import os

import numpy as np
import pytest
import tensorflow_datasets as tfds
from batch_contract import check_contract, full_sequences, make, split_rows

from data import vocab

TEXT_DOCS = {
    "train": ["To be, or not to be: that is the question. " * 40 + "Fin.", "Short.", "Ça va?"],
    "test": ["Now is the winter of our discontent " * 20],
}
PAIRS = {
    "train": [(f"Satz {i}.", f"Sentence {i}.") for i in range(20)] + [("lang " * 30, "long " * 30)],
    "test": [(f"Prüfung {i}", f"Test {i}") for i in range(5)],
}


class DataTestText(tfds.core.GeneratorBasedBuilder):
    """A tiny text set: one long document, as in tiny_shakespeare, and short ones."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        features = tfds.features.FeaturesDict({"text": tfds.features.Text()})
        return tfds.core.DatasetInfo(builder=self, features=features)

    def _split_generators(self, dl_manager):
        return {split: self._generate_examples(docs) for split, docs in TEXT_DOCS.items()}

    def _generate_examples(self, docs):
        for i, doc in enumerate(docs):
            yield i, {"text": doc}


class DataTestTranslation(tfds.core.GeneratorBasedBuilder):
    """A tiny de-en set with one pair too long for the tests' seq_len."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        features = tfds.features.Translation(languages=("de", "en"))
        return tfds.core.DatasetInfo(builder=self, features=features)

    def _split_generators(self, dl_manager):
        return {split: self._generate_examples(pairs) for split, pairs in PAIRS.items()}

    def _generate_examples(self, pairs):
        for i, (de, en) in enumerate(pairs):
            yield i, {"de": de, "en": en}


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    for builder_class in (DataTestText, DataTestTranslation):
        builder_class(data_dir=str(data_dir), file_format="array_record").download_and_prepare()
    return str(data_dir)


def test_tfds_text_rows_are_windows_of_the_documents(data_config, tfds_dir):
    task = make(
        data_config, task="tfds_text", tfds_name="data_test_text", data_dir=tfds_dir, seq_len=32
    )
    assert (task.vocab_size, task.num_symbols, task.length_preserving) == (261, 256, False)
    batch = task.batch(0, 24)
    check_contract(task, batch, 24)
    assert (batch["prefix_lengths"] == 1).all()
    np.testing.assert_array_equal(batch["loss_mask"], batch["targets"] != vocab.PAD)
    docs = [doc.encode() for doc in TEXT_DOCS["train"]]
    windows = set()
    for seq, length in zip(full_sequences(batch), batch["lengths"], strict=True):
        text = vocab.ids_to_bytes(seq)
        if seq[length] == vocab.EOS:  # A short document, taken whole.
            assert text in docs[1:]
        else:  # A window of exactly seq_len bytes of the long document.
            assert len(text) == 32 and text in docs[0]
            windows.add(text)
    assert len(windows) > 5
    eval_text = vocab.ids_to_bytes(full_sequences(task.batch(0, 4, split="eval"))[0])
    assert eval_text in TEXT_DOCS["test"][0].encode()


def test_tfds_text_is_deterministic_and_sliced_per_process(data_config, tfds_dir):
    task = make(
        data_config, task="tfds_text", tfds_name="data_test_text", data_dir=tfds_dir, seq_len=32
    )
    again = make(data_config)
    whole = task.batch(7, 8)
    for key, value in again.batch(7, 8).items():
        np.testing.assert_array_equal(value, whole[key])
    assert not np.array_equal(task.batch(8, 8)["inputs"], whole["inputs"])
    parts = [task.batch(7, 8, process_index=i, process_count=2) for i in range(2)]
    for key, value in whole.items():
        np.testing.assert_array_equal(np.concatenate([part[key] for part in parts]), value)


def test_tfds_translation_rows_are_sentence_pairs(data_config, tfds_dir):
    task = make(
        data_config,
        task="tfds_translation",
        tfds_name="data_test_translation",
        data_dir=tfds_dir,
        seq_len=40,
    )
    batch = task.batch(1, 32)
    check_contract(task, batch, 32)
    train_pairs = {(de.encode(), en.encode()) for de, en in PAIRS["train"]}
    rows = {(vocab.ids_to_bytes(s), vocab.ids_to_bytes(t)) for s, t in split_rows(batch)}
    assert rows <= train_pairs and len(rows) > 10  # The long pair never fits: it is redrawn.
    position = np.arange(task.seq_len)[None, :]
    in_target = (position >= batch["prefix_lengths"][:, None] - 1) & (batch["targets"] != 0)
    np.testing.assert_array_equal(batch["loss_mask"], in_target.astype(np.float32))
    eval_batch = task.batch(1, 4, split="eval")
    test_pairs = {(de.encode(), en.encode()) for de, en in PAIRS["test"]}
    assert {(vocab.ids_to_bytes(s), vocab.ids_to_bytes(t)) for s, t in split_rows(eval_batch)} <= (
        test_pairs
    )
    np.testing.assert_array_equal(task.batch(1, 32)["inputs"], batch["inputs"])


def test_the_first_split_size_rows_are_the_split_once(data_config, tfds_dir):
    """distill.py's default: a TFDS task's first split_size("train") rows, each pair once (the
    pair too long for seq_len is replaced by a redraw, as in training)."""
    task = make(data_config, task="tfds_translation", tfds_name="data_test_translation",
                data_dir=tfds_dir, seq_len=40)  # fmt: skip
    n = task.split_size("train")
    assert (n, task.split_size("eval")) == (len(PAIRS["train"]), len(PAIRS["test"]))
    rows = [(vocab.ids_to_bytes(s), vocab.ids_to_bytes(t)) for s, t in split_rows(task.batch(0, n))]
    fitting = {(de.encode(), en.encode()) for de, en in PAIRS["train"][:-1]}
    assert set(rows) == fitting and len(rows) == n
    with pytest.raises(ValueError, match="split"):
        task.split_size("validation")


def test_tfds_translation_truncates_when_nothing_fits(data_config, tfds_dir):
    task = make(
        data_config,
        task="tfds_translation",
        tfds_name="data_test_translation",
        data_dir=tfds_dir,
        seq_len=8,
    )
    batch = task.batch(0, 16)
    check_contract(task, batch, 16)
    for source, target in split_rows(batch):
        assert len(source) + len(target) == 6 and len(source) >= 3


def sentencepiece_task(data_config, tfds_dir, **overrides):
    """The translation task with a 28-piece SentencePiece model (the most its text allows)."""
    settings = dict(
        task="tfds_translation",
        tfds_name="data_test_translation",
        data_dir=tfds_dir,
        seq_len=18,
        tokenizer="sentencepiece",
        vocab_size=28,
    )
    return make(data_config, **{**settings, **overrides})


def test_tfds_translation_with_sentencepiece_fits_pairs_by_tokens(data_config, tfds_dir):
    task = sentencepiece_task(data_config, tfds_dir)
    assert (task.vocab_size, task.num_symbols) == (vocab.FIRST_SYMBOL + 28, 28)
    model = "data_test_translation/1.0.0/sentencepiece_28_de-en_train.model"
    assert os.path.exists(os.path.join(tfds_dir, model))
    batch = task.batch(1, 32)
    check_contract(task, batch, 32)
    rows = {(task.detokenize(s), task.detokenize(t)) for s, t in split_rows(batch)}
    # Each pair is at least 18 bytes, more than the room of 16 tokens: only as pieces do they fit
    # whole, with no truncation; the long pair (60 pieces) never fits and is redrawn.
    assert rows <= set(PAIRS["train"][:-1]) and len(rows) > 10
    for de, en in PAIRS["train"]:
        assert task.detokenize(task.tokenizer.encode(de)) == de
        assert len(de.encode()) + len(en.encode()) > task.seq_len - 2
    again = make(data_config)  # Loads the stored model: the same ids, the same batch.
    np.testing.assert_array_equal(again.batch(1, 32)["inputs"], batch["inputs"])
    specials = [vocab.BOS, *task.tokenizer.encode("Satz 3."), vocab.SEP, vocab.EOS, vocab.PAD]
    assert task.detokenize(specials) == "Satz 3."


def test_sentencepiece_model_goes_to_tokenizer_dir(data_config, tfds_dir, tmp_path):
    sentencepiece_task(data_config, tfds_dir, tokenizer_dir=str(tmp_path))
    model = "data_test_translation/1.0.0/sentencepiece_28_de-en_train.model"
    assert os.path.exists(tmp_path / model)


def test_tfds_text_with_sentencepiece_windows_tokens(data_config, tfds_dir):
    task = make(
        data_config,
        task="tfds_text",
        tfds_name="data_test_text",
        data_dir=tfds_dir,
        seq_len=32,
        tokenizer="sentencepiece",
        vocab_size=28,
    )
    batch = task.batch(0, 16)
    check_contract(task, batch, 16)
    for seq, length in zip(full_sequences(batch), batch["lengths"], strict=True):
        text = task.detokenize(seq)
        if seq[length] == vocab.EOS:
            assert text in TEXT_DOCS["train"][1:]
        else:  # A window of seq_len pieces: fewer pieces than bytes.
            assert text in TEXT_DOCS["train"][0] and len(text.encode()) > 32


def test_missing_tfds_dataset_names_the_config_key_and_the_fix(data_config, tmp_path):
    empty = tmp_path / "nothing_here"
    with pytest.raises(FileNotFoundError) as error:
        make(data_config, task="tfds_text", tfds_name="data_test_text", data_dir=str(empty))
    assert "data.data_dir" in str(error.value)
    assert str(empty) in str(error.value) and "scripts/prepare_data.py" in str(error.value)


def test_unprepared_bible_names_the_offline_prepare_command(data_config, tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        make(data_config, task="tfds_translation", tfds_name="bible/en-es", data_dir=str(tmp_path))
    assert "`python scripts/prepare_data.py --name=bible/en-es`" in str(error.value)
    assert "offline" in str(error.value) and str(tmp_path) in str(error.value)


def test_bad_tfds_configs_raise_clear_errors(data_config, tfds_dir):
    with pytest.raises(ValueError, match="data.eval_split='validation'"):
        make(
            data_config,
            task="tfds_text",
            tfds_name="data_test_text",
            data_dir=tfds_dir,
            eval_split="validation",
        )
    with pytest.raises(ValueError, match="not a known TFDS dataset"):
        make(data_config, task="tfds_text", tfds_name="no_such_set_xyz", data_dir=tfds_dir)
    with pytest.raises(ValueError, match="data.vocab_size=100 is for data.tokenizer='sentencep"):
        make(data_config, tfds_name="data_test_text", vocab_size=100)
    with pytest.raises(ValueError, match=r"data.vocab_size=5000: Vocabulary size too high"):
        sentencepiece_task(data_config, tfds_dir, vocab_size=5000)


@pytest.mark.slow
def test_a_translation_task_is_scored_by_the_quality_evaluator(data_config, tfds_dir):
    """The real task through decode_and_score (eval.py once crashed here on task.outcome)."""

    from evaluation import decoders, scoring
    from model import ModelConfig, make_decoder

    task = sentencepiece_task(data_config, tfds_dir)
    cfg = ModelConfig(vocab_size=task.vocab_size, d_model=16, num_heads=2, num_layers=1,
                      d_ff=32, max_len=task.seq_len, architecture="encoder_decoder")  # fmt: skip
    models = decoders.Models(make_decoder(cfg))
    batches = [task.batch(0, 4, split="eval")]
    scores = scoring.decode_and_score(decoders.DECODERS["ar_cache"], models, batches, task, 2)
    assert len(scores.texts) == 4 and not scores.outcomes
    assert scores.texts[0]["source"] == task.detokenize(
        batches[0]["inputs"][0, : batches[0]["prefix_lengths"][0]]
    )
