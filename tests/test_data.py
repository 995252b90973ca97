"""Tests for data/: task correctness, the batch contract, determinism, process slices, TFDS."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

import data
from data import vocab

SEQ2SEQ_TASKS = ("copy", "reverse", "sort", "addition")
TEXT_DOCS = {
    "train": ["To be, or not to be: that is the question. " * 40 + "Fin.", "Short.", "Ça va?"],
    "test": ["Now is the winter of our discontent " * 20],
}
PAIRS = {
    "train": [(f"Satz {i}.", f"Sentence {i}.") for i in range(20)] + [("lang " * 30, "long " * 30)],
    "test": [(f"Prüfung {i}", f"Test {i}") for i in range(5)],
}


@pytest.fixture
def tiny_config():
    """The default data config, shrunk."""
    config = data.default_data_config()
    config.num_symbols, config.min_len, config.max_len = 7, 1, 6
    return config


def make(config, **overrides):
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


def digits_value(digits, base):
    return sum(int(d) * base**i for i, d in enumerate(digits))


@pytest.mark.parametrize("name", SEQ2SEQ_TASKS)
def test_seq2seq_tasks_are_correct(tiny_config, name):
    task = make(tiny_config, task=name)
    batch = task.batch(step=3, batch_size=64)
    check_contract(task, batch, 64)
    seq = full_sequences(batch)
    assert (seq[np.arange(64), batch["lengths"]] == vocab.EOS).all()
    source_lengths = []
    for source, target in split_rows(batch):
        source, target = source - vocab.FIRST_SYMBOL, target - vocab.FIRST_SYMBOL
        assert ((source >= 0) & (source < task.num_symbols)).all()
        if name == "copy":
            np.testing.assert_array_equal(target, source)
        elif name == "reverse":
            np.testing.assert_array_equal(target, source[::-1])
        elif name == "sort":
            np.testing.assert_array_equal(target, np.sort(source))
        else:
            base, n = task.num_symbols, len(target)
            assert len(source) == 2 * n
            total = digits_value(source[0::2], base) + digits_value(source[1::2], base)
            assert digits_value(target, base) == total % base**n
        source_lengths.append(len(source) // (2 if name == "addition" else 1))
    assert set(source_lengths) == set(range(1, 7))
    assert task.length_preserving == (name != "addition")
    assert task.vocab_size == vocab.FIRST_SYMBOL + 7


@pytest.mark.parametrize("name", SEQ2SEQ_TASKS)
def test_loss_mask_covers_target_and_eos(tiny_config, name):
    task = make(tiny_config, task=name)
    batch = task.batch(step=0, batch_size=32)
    position = np.arange(task.seq_len)[None, :]
    # Targets at input positions >= prefix_len - 1 are the target tokens and EOS, then PAD.
    in_target = (position >= batch["prefix_lengths"][:, None] - 1) & (batch["targets"] != vocab.PAD)
    np.testing.assert_array_equal(batch["loss_mask"], in_target.astype(np.float32))
    reference = batch["targets"][batch["loss_mask"] == 1]
    assert (reference == vocab.EOS).sum() == 32 and not (reference == vocab.SEP).any()
    everything = make(tiny_config, loss_on="all").batch(step=0, batch_size=32)
    np.testing.assert_array_equal(everything["loss_mask"], everything["targets"] != vocab.PAD)


def test_minimal_and_explicit_seq_len(tiny_config):
    assert make(tiny_config, task="copy").seq_len == 14
    assert make(tiny_config, task="addition").seq_len == 20
    assert make(tiny_config, task="random").seq_len == 7
    task = make(tiny_config, task="reverse", seq_len=40)
    batch = task.batch(0, 8)
    check_contract(task, batch, 8)
    assert (batch["inputs"][:, 14:] == vocab.PAD).all()


def test_random_task_is_uniform_with_loss_only_on_symbols(tiny_config):
    task = make(tiny_config, task="random")
    batch = task.batch(step=0, batch_size=2048)
    check_contract(task, batch, 2048)
    assert (batch["prefix_lengths"] == 1).all()
    is_symbol = batch["targets"] >= vocab.FIRST_SYMBOL
    np.testing.assert_array_equal(batch["loss_mask"], is_symbol.astype(np.float32))
    assert (batch["targets"][np.arange(2048), batch["lengths"] - 1] == vocab.EOS).all()
    counts = np.bincount(batch["targets"][is_symbol] - vocab.FIRST_SYMBOL, minlength=7)
    assert np.abs(counts / counts.mean() - 1).max() < 0.1, counts


@pytest.mark.parametrize("name", data.synthetic.TASKS)
def test_batches_are_pure_functions_of_seed_step_split(tiny_config, name):
    task = make(tiny_config, task=name)
    batch = task.batch(5, 16)
    for key, value in make(tiny_config).batch(5, 16).items():
        np.testing.assert_array_equal(value, batch[key])
    others = [
        task.batch(6, 16),
        task.batch(5, 16, split="eval"),
        make(tiny_config, seed=1).batch(5, 16),
    ]
    for other in others:
        assert not np.array_equal(other["inputs"], batch["inputs"])


@pytest.mark.parametrize("name", ("sort", "random"))
def test_process_slices_concatenate_to_the_global_batch(tiny_config, name):
    task = make(tiny_config, task=name)
    whole = task.batch(2, 12, split="eval")
    parts = [task.batch(2, 12, split="eval", process_index=i, process_count=4) for i in range(4)]
    for key, value in whole.items():
        np.testing.assert_array_equal(np.concatenate([part[key] for part in parts]), value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"task": "sorting"}, "known tasks: .*'copy'.*'tfds_translation'"),
        ({"min_len": 7}, "min_len"),
        ({"seq_len": 13}, "seq_len=13 is too small"),
        ({"num_symbols": 1}, "num_symbols"),
        ({"loss_on": "source"}, "loss_on"),
    ],
)
def test_bad_configs_raise_clear_errors(tiny_config, overrides, message):
    with pytest.raises(ValueError, match=message):
        make(tiny_config, **overrides)


def test_bad_batch_arguments_raise_clear_errors(tiny_config):
    task = make(tiny_config)
    with pytest.raises(ValueError, match="divisible by process_count=4"):
        task.batch(0, 6, process_index=0, process_count=4)
    with pytest.raises(ValueError, match="process_index"):
        task.batch(0, 8, process_index=4, process_count=4)
    with pytest.raises(ValueError, match="Unknown split 'test'"):
        task.batch(0, 8, split="test")


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


def test_tfds_text_rows_are_windows_of_the_documents(tiny_config, tfds_dir):
    task = make(
        tiny_config, task="tfds_text", tfds_name="data_test_text", data_dir=tfds_dir, seq_len=32
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


def test_tfds_text_is_deterministic_and_sliced_per_process(tiny_config, tfds_dir):
    task = make(
        tiny_config, task="tfds_text", tfds_name="data_test_text", data_dir=tfds_dir, seq_len=32
    )
    again = make(tiny_config)
    whole = task.batch(7, 8)
    for key, value in again.batch(7, 8).items():
        np.testing.assert_array_equal(value, whole[key])
    assert not np.array_equal(task.batch(8, 8)["inputs"], whole["inputs"])
    parts = [task.batch(7, 8, process_index=i, process_count=2) for i in range(2)]
    for key, value in whole.items():
        np.testing.assert_array_equal(np.concatenate([part[key] for part in parts]), value)


def test_tfds_translation_rows_are_sentence_pairs(tiny_config, tfds_dir):
    task = make(
        tiny_config,
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


def test_tfds_translation_truncates_when_nothing_fits(tiny_config, tfds_dir):
    task = make(
        tiny_config,
        task="tfds_translation",
        tfds_name="data_test_translation",
        data_dir=tfds_dir,
        seq_len=8,
    )
    batch = task.batch(0, 16)
    check_contract(task, batch, 16)
    for source, target in split_rows(batch):
        assert len(source) + len(target) == 6 and len(source) >= 3


def test_missing_tfds_dataset_names_the_config_key_and_the_fix(tiny_config, tmp_path):
    empty = tmp_path / "nothing_here"
    with pytest.raises(FileNotFoundError) as error:
        make(tiny_config, task="tfds_text", tfds_name="data_test_text", data_dir=str(empty))
    assert "data.data_dir" in str(error.value)
    assert str(empty) in str(error.value) and "scripts/prepare_data.py" in str(error.value)


def test_bad_tfds_configs_raise_clear_errors(tiny_config, tfds_dir):
    with pytest.raises(ValueError, match="data.eval_split='validation'"):
        make(
            tiny_config,
            task="tfds_text",
            tfds_name="data_test_text",
            data_dir=tfds_dir,
            eval_split="validation",
        )
    with pytest.raises(ValueError, match="not a known TFDS dataset"):
        make(tiny_config, task="tfds_text", tfds_name="no_such_set_xyz", data_dir=tfds_dir)
