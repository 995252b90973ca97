"""The task registry (data/__init__.py), DataConfig (data/config.py), and what every task tells
evaluation: its label, whether it is scored on text, its token labels and its random control."""

import dataclasses
import subprocess
import sys

import ml_collections
import numpy as np
import pytest

import data
from data import distilled, vocab
from data.config import DataConfig

SYNTHETIC = tuple(kind.name for kind in data.synthetic.BUILT_IN)


def assert_same_batches(task, reference, batch_size: int = 8):
    for split in ("train", "eval"):
        expected = reference.batch(3, batch_size, split=split)
        for key, value in task.batch(3, batch_size, split=split).items():
            np.testing.assert_array_equal(value, expected[key])


def reference_random_task(data_config, max_len: int, vocab_size: int):
    """evaluation/quality.py's random_task as it was before random_control replaced it."""
    config = ml_collections.ConfigDict(dict(data_config.to_dict()))
    if config.task not in SYNTHETIC:
        config.num_symbols = vocab_size - vocab.FIRST_SYMBOL
    config.tokenizer, config.vocab_size = "bytes", 0
    config.task, config.seq_len, config.loss_on = "random", 0, "target"
    config.max_len = min(config.max_len, max_len - 1)
    config.min_len = min(config.min_len, config.max_len)
    return data.make_task(config)


class EchoTask:
    """A task defined outside data/: each row's target repeats its one-symbol source."""

    name, label, length_preserving, text_metrics = "echo", "echo (test)", True, False
    num_symbols, seq_len = 3, 4

    def __init__(self, config: DataConfig):
        self.config = config
        self.vocab_size = vocab.vocab_size(self.num_symbols)

    def detokenize(self, ids) -> str:
        return "".join(str(i - vocab.FIRST_SYMBOL) for i in ids if i >= vocab.FIRST_SYMBOL)

    def token_label(self, token: int) -> str:
        return self.detokenize([token]) or vocab.render([token], self.num_symbols)

    def random_control(self, max_len: int, vocab_size: int):
        return data.synthetic.random_control(self.config, max_len, self.num_symbols)

    def outcome(self, source, generated) -> None:
        del source, generated

    def batch(self, step, batch_size, *, split="train", process_index=0, process_count=1):
        rng = np.random.default_rng([self.config.seed, step])
        symbol_B = rng.integers(0, self.num_symbols, batch_size) + vocab.FIRST_SYMBOL
        bos_B, sep_B, eos_B = (np.full(batch_size, t) for t in (vocab.BOS, vocab.SEP, vocab.EOS))
        seq_BxS = np.stack([bos_B, symbol_B, sep_B, symbol_B, eos_B], axis=1).astype(np.int32)
        return {"inputs": seq_BxS[:, :-1], "targets": seq_BxS[:, 1:]}


@pytest.fixture
def echo_registered():
    data.register_task("echo", EchoTask)
    yield "echo"
    del data.TASKS["echo"]


def test_a_registered_task_is_made_from_its_id(echo_registered):
    config = DataConfig(task=echo_registered, seed=3)
    task = data.make_task(config)
    assert isinstance(task, EchoTask) and task.config == config
    assert task.label == "echo (test)" and task.token_label(6) == "1"
    batch = task.batch(0, 4)
    np.testing.assert_array_equal(batch["targets"][:, 2], batch["inputs"][:, 1])
    # While callers move to DataConfig, a ConfigDict or a dict describes the same task.
    as_dict = data.default_data_config()
    as_dict.update(task=echo_registered, seed=3)
    for other in (as_dict, as_dict.to_dict()):
        np.testing.assert_array_equal(data.make_task(other).batch(0, 4)["inputs"], batch["inputs"])
    with pytest.raises(ValueError, match="data.task='echo' is already registered"):
        data.register_task(echo_registered, EchoTask)


def test_an_unknown_task_is_refused_in_one_line_naming_the_registered_ones():
    with pytest.raises(ValueError) as error:
        data.make_task(DataConfig(task="sorting"))
    message = str(error.value)
    assert "\n" not in message and message.startswith("Unknown data.task='sorting'; known tasks: (")
    assert all(repr(name) in message for name in (*SYNTHETIC, "tfds_translation"))


def test_data_config_from_a_dict_names_unknown_keys_and_makes_lists_tuples():
    assert data.default_data_config().to_dict() == dataclasses.asdict(DataConfig())
    config = DataConfig.from_dict({"task": "sort", "max_len": 7})
    assert config == DataConfig(task="sort", max_len=7)
    assert DataConfig.from_dict({"tfds_name": ["a", "b"]}).tfds_name == ("a", "b")
    with pytest.raises(ValueError) as error:
        DataConfig.from_dict({"task": "copy", "num_symbol": 8, "maxlen": 3})
    assert "\n" not in str(error.value)
    assert "Unknown data config keys ['maxlen', 'num_symbol']; known keys are ['task'" in str(
        error.value
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.task = "copy"


def test_synthetic_runs_import_neither_tfds_nor_grain():
    code = (
        "import sys, data; data.make_task(data.DataConfig(task='copy')).batch(0, 2); "
        "print(sorted({'tensorflow_datasets', 'grain'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("name", ("copy", "two_alphabets", "addition"))
def test_a_synthetic_task_labels_itself_and_its_tokens(name):
    task = data.make_task(DataConfig(task=name, num_symbols=8))
    assert (task.label, task.text_metrics) == (name, False)
    assert task.config == DataConfig(task=name, num_symbols=8)
    ids = [vocab.BOS, vocab.FIRST_SYMBOL, vocab.FIRST_SYMBOL + 2, vocab.SEP, vocab.EOS]
    assert task.detokenize(ids) == "ac"
    labels = [task.token_label(i) for i in (vocab.BOS, vocab.SEP, vocab.EOS, vocab.FIRST_SYMBOL)]
    assert labels == ["^", "|", "$", "a"]


@pytest.mark.parametrize(
    ("name", "max_len", "vocab_size"),
    [("copy", 64, 21), ("sort", 8, 21), ("random", 3, 0), ("two_alphabets", 10, 37)],
)
def test_the_random_control_of_a_synthetic_task_is_the_old_random_task(name, max_len, vocab_size):
    config = data.default_data_config()
    config.update(task=name, num_symbols=16, min_len=3, max_len=9, seed=2, loss_on="all")
    control = data.make_task(config).random_control(max_len, vocab_size)
    reference = reference_random_task(config, max_len, vocab_size)
    assert control == reference and control.name == "random" and control.num_symbols == 16
    assert control.max_len == min(9, max_len - 1) and control.seq_len <= max_len
    assert_same_batches(control, reference)


def test_a_distilled_task_names_its_teacher_and_keeps_its_base_controls(tmp_path):
    config = DataConfig(task="reverse", num_symbols=8, min_len=2, max_len=6)
    base = data.make_task(config)
    rows = distilled.rows_from_continuations(
        base.batch(0, 2), [np.array([vocab.EOS])] * 2, base.seq_len, "target"
    )
    provenance = {"teacher": {"variant": "reverse_ar"}, "data": dataclasses.asdict(config)}
    distilled.write(str(tmp_path), rows, provenance)
    student = data.make_task(dataclasses.replace(config, distilled_dir=str(tmp_path)))
    assert student.label == "reverse (distilled from reverse_ar)" and not student.text_metrics
    assert student.config.distilled_dir == str(tmp_path)
    assert student.token_label(vocab.FIRST_SYMBOL + 1) == "b"
    control = student.random_control(16, base.vocab_size)
    assert (
        control == base.random_control(16, base.vocab_size) and control.config.distilled_dir == ""
    )


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    from test_tfds_data import DataTestText, DataTestTranslation

    data_dir = tmp_path_factory.mktemp("tfds")
    for builder_class in (DataTestText, DataTestTranslation):
        builder_class(data_dir=str(data_dir), file_format="array_record").download_and_prepare()
    return str(data_dir)


def translation_config(tfds_dir: str, **overrides) -> DataConfig:
    settings = dict(task="tfds_translation", tfds_name="data_test_translation", seq_len=40)
    return DataConfig(data_dir=tfds_dir, **{**settings, **overrides})


def test_a_translation_task_is_labelled_by_its_languages_and_scored_on_text(tfds_dir):
    task = data.make_task(translation_config(tfds_dir))
    assert (task.label, task.text_metrics) == ("data_test_translation (de→en)", True)
    assert task.token_label(vocab.FIRST_SYMBOL + ord("a")) == "a"
    assert task.token_label(vocab.FIRST_SYMBOL + ord(" ")) == " "  # Blank text: the byte.
    assert task.token_label(vocab.SEP) == "|"
    text = data.make_task(
        DataConfig(task="tfds_text", tfds_name="data_test_text", data_dir=tfds_dir)
    )
    assert (text.label, text.text_metrics) == ("data_test_text (text)", False)


@pytest.mark.parametrize(
    ("overrides", "vocab_size", "num_symbols"),
    [({}, 261, 256), ({"tokenizer": "sentencepiece", "vocab_size": 28, "seq_len": 18}, 33, 28)],
)
def test_the_random_control_of_a_text_task_spans_the_models_vocabulary(
    tfds_dir, overrides, vocab_size, num_symbols
):
    config = translation_config(tfds_dir, **overrides)
    control = data.make_task(config).random_control(32, vocab_size)
    assert (control.name, control.num_symbols, control.vocab_size) == (
        "random",
        num_symbols,
        vocab_size,
    )
    reference = reference_random_task(
        ml_collections.ConfigDict(dataclasses.asdict(config)), 32, vocab_size
    )
    assert control == reference
    assert_same_batches(control, reference)
