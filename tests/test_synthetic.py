"""data/synthetic/ and the batch contract of data/batching.py: task correctness, loss masks,
seq_len, the random task, determinism, process slices, bad configs and batch arguments, and a
synthetic task registered from outside."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from batch_contract import check_contract, full_sequences, make, split_rows

import data
from data import vocab
from data.synthetic.builtin import BUILT_IN as BUILT_IN_KINDS
from data.synthetic.task import Rows, SyntheticKind
from experiments import tiny
from plan import make_plan
from training.step import Hyperparams, init_train_state, train_step

SEQ2SEQ_TASKS = ("copy", "reverse", "sort", "addition")
BUILT_IN = tuple(kind.name for kind in BUILT_IN_KINDS)


def digits_value(digits, base):
    return sum(int(d) * base**i for i, d in enumerate(digits))


@pytest.mark.parametrize("name", SEQ2SEQ_TASKS)
def test_seq2seq_tasks_are_correct(data_config, name):
    task = make(data_config, task=name)
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
def test_loss_mask_covers_target_and_eos(data_config, name):
    task = make(data_config, task=name)
    batch = task.batch(step=0, batch_size=32)
    position = np.arange(task.seq_len)[None, :]
    # Targets at input positions >= prefix_len - 1 are the target tokens and EOS, then PAD.
    in_target = (position >= batch["prefix_lengths"][:, None] - 1) & (batch["targets"] != vocab.PAD)
    np.testing.assert_array_equal(batch["loss_mask"], in_target.astype(np.float32))
    reference = batch["targets"][batch["loss_mask"] == 1]
    assert (reference == vocab.EOS).sum() == 32 and not (reference == vocab.SEP).any()
    everything = make(data_config, loss_on="all").batch(step=0, batch_size=32)
    np.testing.assert_array_equal(everything["loss_mask"], everything["targets"] != vocab.PAD)


def test_minimal_and_explicit_seq_len(data_config):
    assert make(data_config, task="copy").seq_len == 14
    assert make(data_config, task="addition").seq_len == 20
    assert make(data_config, task="random").seq_len == 7
    task = make(data_config, task="reverse", seq_len=40)
    batch = task.batch(0, 8)
    check_contract(task, batch, 8)
    assert (batch["inputs"][:, 14:] == vocab.PAD).all()


def test_random_task_is_uniform_with_loss_only_on_symbols(data_config):
    task = make(data_config, task="random")
    batch = task.batch(step=0, batch_size=2048)
    check_contract(task, batch, 2048)
    assert (batch["prefix_lengths"] == 1).all()
    is_symbol = batch["targets"] >= vocab.FIRST_SYMBOL
    np.testing.assert_array_equal(batch["loss_mask"], is_symbol.astype(np.float32))
    assert (batch["targets"][np.arange(2048), batch["lengths"] - 1] == vocab.EOS).all()
    counts = np.bincount(batch["targets"][is_symbol] - vocab.FIRST_SYMBOL, minlength=7)
    assert np.abs(counts / counts.mean() - 1).max() < 0.1, counts


@pytest.mark.parametrize("name", BUILT_IN)
def test_batches_are_pure_functions_of_seed_step_split(data_config, name):
    task = make(data_config, task=name)
    batch = task.batch(5, 16)
    for key, value in make(data_config).batch(5, 16).items():
        np.testing.assert_array_equal(value, batch[key])
    others = [
        task.batch(6, 16),
        task.batch(5, 16, split="eval"),
        make(data_config, seed=1).batch(5, 16),
    ]
    for other in others:
        assert not np.array_equal(other["inputs"], batch["inputs"])


@pytest.mark.parametrize("name", ("sort", "random"))
def test_process_slices_concatenate_to_the_global_batch(data_config, name):
    task = make(data_config, task=name)
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
def test_bad_configs_raise_clear_errors(data_config, overrides, message):
    with pytest.raises(ValueError, match=message):
        make(data_config, **overrides)


def test_bad_batch_arguments_raise_clear_errors(data_config):
    task = make(data_config)
    with pytest.raises(ValueError, match="divisible by process_count=4"):
        task.batch(0, 6, process_index=0, process_count=4)
    with pytest.raises(ValueError, match="process_index"):
        task.batch(0, 8, process_index=4, process_count=4)
    with pytest.raises(ValueError, match="Unknown split 'test'"):
        task.batch(0, 8, split="test")


def test_two_alphabets_writes_each_target_wholly_in_one_random_alphabet(data_config):
    task = make(data_config, task="two_alphabets")
    assert task.vocab_size == vocab.FIRST_SYMBOL + 2 * data_config.num_symbols
    batch = task.batch(step=0, batch_size=64)
    check_contract(task, batch, 64)
    alphabets = []
    for source, target in split_rows(batch):
        shift = target - source
        assert len(set(shift.tolist())) == 1 and shift[0] in (0, data_config.num_symbols)
        alphabets.append(shift[0])
    assert 0.3 < np.mean(np.array(alphabets) > 0) < 0.7  # Both modes, about evenly.


def test_two_alphabets_scorer_on_hand_made_outputs(data_config):
    task = make(data_config, task="two_alphabets")
    n, eos = data_config.num_symbols, vocab.EOS
    source = np.array([0, 3, 5]) + vocab.FIRST_SYMBOL
    cases = {
        "correct": [source.tolist() + [eos], (source + n).tolist() + [eos]],
        "mixed": [[source[0], source[1] + n, source[2], eos]],
        "wrong": [
            [source[0], source[1], source[1], eos],  # One alphabet, a wrong symbol.
            source.tolist(),  # No EOS.
            source.tolist() + [source[0], eos],  # Too long.
        ],
    }
    for expected, outputs in cases.items():
        for output in outputs:
            assert task.outcome(source, np.array(output)) == expected, output
    assert make(data_config, task="copy").outcome(source, source) is None


def test_two_alphabets_scorer_drops_only_a_real_eos(data_config):
    """An output cut off (by max_new_tokens) before EOS is scored on all of its tokens."""
    task = make(data_config, task="two_alphabets")
    n, eos = data_config.num_symbols, vocab.EOS
    source = np.array([0, 3, 5]) + vocab.FIRST_SYMBOL
    mixed_last = [source[0], source[1], source[2] + n]  # Only its last token is in alphabet B.
    assert task.outcome(source, np.array(mixed_last)) == "mixed"  # Cut off: no EOS.
    assert task.outcome(source, np.array(mixed_last + [eos])) == "mixed"
    assert task.outcome(source, np.array(mixed_last[:2])) == "wrong"  # Cut short, one alphabet.
    assert task.outcome(source, np.array(mixed_last[:2] + [eos])) == "wrong"


def _rotate(rng, symbols_BxL, lengths_B, num_symbols):
    """A generator from outside data/: the target is the source rotated left by one."""
    del rng, num_symbols
    index_BxL = (np.arange(symbols_BxL.shape[1])[None, :] + 1) % lengths_B[:, None]
    rotated_BxL = np.take_along_axis(symbols_BxL, index_BxL, axis=1)
    return Rows(symbols_BxL, lengths_B, rotated_BxL, lengths_B)


@pytest.fixture
def rotate_registered():
    data.register_synthetic(SyntheticKind("rotate", _rotate, length_preserving=True))
    yield "rotate"
    del data.TASKS["rotate"]


def test_a_synthetic_task_registered_from_outside_is_made_like_the_built_ins(
    data_config, rotate_registered
):
    task = make(data_config, task=rotate_registered)
    assert (task.name, task.label, task.length_preserving) == ("rotate", "rotate", True)
    assert task.seq_len == 14 and task.vocab_size == vocab.FIRST_SYMBOL + 7
    batch = task.batch(step=2, batch_size=32)
    check_contract(task, batch, 32)
    for source, target in split_rows(batch):
        np.testing.assert_array_equal(target, np.roll(source, -1))
    assert task.outcome(source, target) is None
    control = task.random_control(10, task.vocab_size)
    assert control == make(data_config, task="random", max_len=6)
    with pytest.raises(ValueError, match="data.task='rotate' is already registered"):
        data.register_synthetic(SyntheticKind("rotate", _rotate, True))


@pytest.mark.slow
def test_a_synthetic_task_registered_from_outside_trains(rotate_registered):
    config = tiny.get_config()
    config.data.update(task=rotate_registered, num_symbols=6, min_len=2, max_len=5)
    config.model.update(num_layers=1, d_model=16, num_heads=2, d_ff=32)
    config.train.update(learning_rate=1e-2, warmup_steps=0)
    plan = make_plan(config, "causal")
    assert plan.model.vocab_size == vocab.FIRST_SYMBOL + 6 and plan.model.max_len == 12
    hparams = Hyperparams.from_config(plan.train)
    graphdef, params, opt_state = init_train_state(plan.model, hparams, 0)
    batch = {k: jnp.asarray(v) for k, v in data.make_task(plan.data).batch(0, 8).items()}
    losses = []
    for step in range(8):
        params, opt_state, metrics = train_step(
            graphdef,
            params,
            opt_state,
            batch,
            step,
            jax.random.key(0),
            hparams,
            objective="teacher_forcing",
        )
        losses.append(float(metrics["loss"]))
    assert losses[-1] < losses[0], losses
