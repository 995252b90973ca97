"""data/token_batches.py and the token-count training batches of tfds_translation and distilled
data: every pair once an epoch, batches within their token budget and bucket, determinism."""

import collections

import numpy as np
import pytest
from batch_contract import make, split_rows
from test_tfds_data import PAIRS, tfds_dir  # noqa: F401 (a fixture)

import data
from data import batching, distilled, token_batches, vocab


def _lengths(n: int = 500, seed: int = 0):
    rng = np.random.default_rng(seed)
    prompts = rng.integers(3, 90, n)
    return prompts, np.clip(prompts + rng.integers(-10, 10, n), 2, None)


def _epoch_steps(batches: token_batches.TokenBatches, epoch: int) -> range:
    start = sum(len(batches._epoch(e)) for e in range(epoch))
    return range(start, start + len(batches._epoch(epoch)))


def test_every_pair_is_trained_once_an_epoch_and_only_top_ups_repeat():
    prompts, decoders = _lengths()
    batches = token_batches.TokenBatches(prompts, decoders, batch_tokens=1024, seed=1)
    for epoch in (0, 1):
        seen = collections.Counter()
        for step in _epoch_steps(batches, epoch):
            pairs = batches.pairs(step)
            seen.update(pairs.tolist())
            width = batches.buckets_N[pairs]
            assert (width == width[0]).all()  # One bucket a batch.
            assert len(pairs) % token_batches.ROW_MULTIPLE == 0
            assert len(pairs) == token_batches.rows_for(1024, int(width[0]))
            assert (np.maximum(prompts[pairs], decoders[pairs]) <= width[0]).all()
        assert set(seen) == set(range(len(prompts)))
        repeats = sum(count - 1 for count in seen.values())
        rows = sum(len(batches.pairs(step)) for step in _epoch_steps(batches, epoch))
        assert repeats == rows - len(prompts)
        assert repeats / rows == pytest.approx(batches.top_up_share())


def test_batches_are_a_pure_function_of_seed_and_step():
    prompts, decoders = _lengths()
    one, again = (token_batches.TokenBatches(prompts, decoders, 1024, seed=1) for _ in range(2))
    other = token_batches.TokenBatches(prompts, decoders, 1024, seed=2)
    late = len(one._epoch(0)) + 3  # In the second epoch, asked for first.
    np.testing.assert_array_equal(again.pairs(late), one.pairs(late))
    np.testing.assert_array_equal(again.pairs(0), one.pairs(0))
    assert not all(np.array_equal(one.pairs(s), other.pairs(s)) for s in range(5))
    assert not all(np.array_equal(one.pairs(s), one.pairs(late - 3 + s)) for s in range(5))
    with pytest.raises(ValueError, match="non-negative"):
        one.pairs(-1)


def test_the_budget_counts_both_stacks_and_never_goes_below_the_row_multiple():
    assert token_batches.rows_for(2560, 32) == 40  # 2560 / 64 positions a row.
    assert token_batches.rows_for(2560, 256) == token_batches.ROW_MULTIPLE


def test_devices_that_cannot_split_every_batch_are_refused_in_one_line():
    for count in (1, 2, 4, 8):
        token_batches.check_devices(count)
    with pytest.raises(ValueError, match=r"^data.batch_tokens gives batches of a multiple of 8 "):
        token_batches.check_devices(3)


def test_translation_batches_by_token_count_keep_every_pair(data_config, tfds_dir):  # noqa: F811
    task = make(
        data_config, task="tfds_translation", tfds_name="data_test_translation",
        data_dir=tfds_dir, seq_len=40, batch_tokens=256,
    )  # fmt: skip
    epoch = _epoch_steps(task.token_batches, 0)
    rows = []
    for step in epoch:
        batch = task.batch(step, 0)
        width = int(task.token_batches.buckets_N[task.token_batches.pairs(step)].max())
        assert batch["inputs"].shape[1] == min(2 * width - 1, task.seq_len)
        split = batching.split_seq2seq(batch)
        assert split["source"].shape[1] == split["inputs"].shape[1] == width
        rows += [(vocab.ids_to_bytes(s), vocab.ids_to_bytes(t)) for s, t in split_rows(batch)]
    # The long pair (more than seq_len) is cut, not replaced: every pair is there.
    fitting = {(de.encode(), en.encode()) for de, en in PAIRS["train"][:-1]}
    assert fitting <= set(rows) and any(s.startswith(b"lang lang") for s, _ in rows)
    (note,) = data.training_notes(task)
    assert note.startswith(f"{1 / len(PAIRS['train']):.2%} of the training pairs are cut")
    eval_batch = task.batch(0, 4, split="eval")  # Eval batches keep their rows and width.
    assert eval_batch["inputs"].shape == (4, task.seq_len)


def test_distilled_rows_batch_by_token_count(data_config, tmp_path):
    data_config.update(task="copy", num_symbols=8, min_len=2, max_len=20, seq_len=44)
    base = data.make_task(data_config)
    rows = base.batch(0, 64)
    provenance = {"teacher": {"variant": "ar"}, "data": dict(data_config.to_dict())}
    distilled.write(str(tmp_path), rows, provenance)
    data_config.update(distilled_dir=str(tmp_path), batch_tokens=256)
    task = data.make_task(data_config)
    seen = set()
    for step in _epoch_steps(task.token_batches, 0):
        batch = task.batch(step, 0)
        pairs = task.token_batches.pairs(step)
        np.testing.assert_array_equal(batch["lengths"], rows["lengths"][pairs])
        width = batch["inputs"].shape[1]
        assert (batch["lengths"] <= width).all() and width <= task.seq_len
        seen.update(pairs.tolist())
    assert seen == set(range(64))
    assert data.training_notes(task)[0].endswith("(batches of up to 256 tokens)")
