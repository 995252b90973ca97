"""Sequence-level distillation (data/distilled.py, distill.py): a teacher's outputs become a
dataset that the data pipeline reads like any other, with its provenance."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import tmpfs

import data
from data import distilled, vocab
from model import generate
from training import checkpoints, run_folder

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(**overrides):
    config = data.default_data_config()
    config.update({"task": "reverse", "num_symbols": 8, "min_len": 2, "max_len": 6, **overrides})
    return config


def test_rows_round_trip_through_the_pipeline_with_their_provenance(tmp_path):
    task = data.make_task(_config())
    batch = task.batch(0, 6, split="train")
    # A teacher that answers with the source itself (not reversed), cut or ended by EOS.
    continuations = []
    for b in range(6):
        source = batch["inputs"][b, 1 : batch["prefix_lengths"][b] - 1]
        continuations.append(np.append(source, vocab.EOS) if b % 2 else source[:2])
    rows = distilled.rows_from_continuations(batch, continuations, task.seq_len, "target")
    provenance = {"teacher": {"variant": "reverse_ar"}, "data": _config().to_dict()}
    distilled.write(str(tmp_path), rows, provenance)

    student = data.make_task(_config(distilled_dir=str(tmp_path)))
    assert student.provenance == json.loads((tmp_path / "provenance.json").read_text())
    assert student.teacher == "reverse_ar" and student.vocab_size == task.vocab_size
    train = student.batch(0, 6, split="train")
    for key in distilled.KEYS:
        np.testing.assert_array_equal(train[key], rows[key])
    for b in range(6):  # Each row: the prompt, then the teacher's continuation.
        P, L = train["prefix_lengths"][b], train["lengths"][b]
        np.testing.assert_array_equal(train["inputs"][b, :P], batch["inputs"][b, :P])
        np.testing.assert_array_equal(train["targets"][b, P - 1 : L], continuations[b])
    # Rows cycle; the held-out split stays the real task's.
    np.testing.assert_array_equal(student.batch(1, 4)["inputs"][:2], rows["inputs"][4:])
    for key, value in student.batch(0, 6, split="eval").items():
        np.testing.assert_array_equal(value, task.batch(0, 6, split="eval")[key])


def test_distilled_data_from_another_task_or_a_missing_folder_is_refused(tmp_path):
    with pytest.raises(ValueError, match="distill.py"):
        data.make_task(_config(distilled_dir=str(tmp_path / "nothing")))
    task = data.make_task(_config())
    batch = task.batch(0, 2)
    rows = distilled.rows_from_continuations(
        batch, [np.array([vocab.EOS])] * 2, task.seq_len, "target"
    )
    distilled.write(str(tmp_path), rows, {"teacher": {}, "data": _config().to_dict()})
    with pytest.raises(ValueError, match="data.task: 'reverse' -> 'sort'"):
        data.make_task(_config(task="sort", distilled_dir=str(tmp_path)))
    # Data distilled before the tokenizer keys existed was byte-level, with no vocab_size.
    older = {k: v for k, v in _config().to_dict().items() if k not in ("tokenizer", "vocab_size")}
    distilled.write(str(tmp_path), rows, {"teacher": {}, "data": older})
    data.make_task(_config(distilled_dir=str(tmp_path)))


@pytest.mark.slow
def test_distill_py_decodes_with_the_teacher_and_records_it(tiny_workdir, tmp_path):
    teacher = run_folder.run_dir(tiny_workdir, "causal", 0)
    out = tmp_path / "distilled"
    command = [sys.executable, "distill.py", f"--teacher={teacher}", f"--out={out}",
               "--num_examples=40", "--batch_size=16"]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "distill: 40 training rows with AR (cache), 16 at a time" in result.stderr
    assert "40/40 [" in result.stderr  # The progress bar's last state.
    provenance = distilled.read_provenance(str(out))
    assert provenance["teacher"]["variant"] == "causal" and provenance["teacher"]["step"] == 3
    assert provenance["decoder"] == "ar_cache" and provenance["num_examples"] == 40
    config = data.default_data_config()
    config.update({**provenance["data"], "distilled_dir": str(out)})
    rows = data.make_task(config).batch(0, 40)
    assert rows["inputs"].shape[0] == 40 and (rows["lengths"] >= rows["prefix_lengths"]).all()
    _assert_rows_are_the_teachers_greedy_decode(teacher, str(out), batch_size=16)
    again = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert again.returncode == 1 and "--overwrite" in again.stderr.strip().splitlines()[-1]


def _assert_rows_are_the_teachers_greedy_decode(teacher: str, out: str, batch_size: int) -> None:
    """Each distilled row is a training prompt, in order, followed by what the teacher itself
    decodes greedily from it (a distill.py that copied the references would fail here: a 3-step
    teacher does not reproduce them)."""
    model, _, plan, _ = checkpoints.load_params(teacher)
    task = data.make_task(plan.data)
    with np.load(os.path.join(out, distilled.ROWS)) as f:
        rows = {key: f[key] for key in f.files}
    differs_from_reference = 0
    for i in range(0, len(rows["lengths"]), batch_size):
        train = task.batch(i // batch_size, batch_size, split="train")
        got = {key: value[i : i + batch_size] for key, value in rows.items()}
        prefix_B = got["prefix_lengths"]
        np.testing.assert_array_equal(prefix_B, train["prefix_lengths"][: len(prefix_B)])
        P = int(prefix_B.max())
        prompts_BxP = np.where(np.arange(P) < prefix_B[:, None], got["inputs"][:, :P], vocab.PAD)
        np.testing.assert_array_equal(prompts_BxP, np.where(
            np.arange(P) < prefix_B[:, None], train["inputs"][: len(prefix_B), :P], vocab.PAD
        ))  # fmt: skip
        room = min(task.seq_len, model.cfg.max_len) + 1 - P  # As distill.py leaves.
        greedy = generate(model, prompts_BxP, prefix_B, max_new_tokens=room, eos_id=vocab.EOS)
        tokens_BxL, lengths_B = np.asarray(greedy.tokens_BxL), np.asarray(greedy.lengths_B)
        for b, p in enumerate(prefix_B):
            continuation = tokens_BxL[b, p : lengths_B[b]]
            # With or without EOS (a row cut at the limit has none), targets[p - 1 : length]
            # is everything after the prompt.
            distilled_row = got["targets"][b, p - 1 : got["lengths"][b]]
            np.testing.assert_array_equal(distilled_row, continuation)
            reference = train["targets"][b, p - 1 : train["lengths"][b]]
            differs_from_reference += not np.array_equal(reference, continuation)
    assert differs_from_reference > 0  # The test can tell the teacher from the references.


@pytest.mark.slow
def test_distill_py_survives_a_full_disk_and_goes_on_where_it_stopped(tiny_workdir, tmp_path):
    """A full disk at the end once lost the whole distillation, named no path, and left a
    temporary file on the full disk."""
    teacher = run_folder.run_dir(tiny_workdir, "causal", 0)
    out = tmp_path / "small"
    out.mkdir()
    command = [sys.executable, "distill.py", f"--teacher={teacher}", f"--out={out / 'd'}",
               "--num_examples=64", "--batch_size=8"]  # fmt: skip
    with tmpfs(out, "size=28k"):
        full = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
        last = full.stderr.strip().splitlines()[-1]
        assert full.returncode == 1 and "No space left on device writing" in last, last
        assert str(out / "d") in last and "rerun the same command" in last
        leftovers = [n for _, _, files in os.walk(out) for n in files if ".tmp" in n]
        assert leftovers == []
        kept = len(os.listdir(out / "d" / ".shards")) - 1  # job.json beside the batches.
        assert 1 < kept < 8
        last = out / "d" / ".shards" / f"batch_{kept - 1:06d}.npz"
        os.truncate(last, 100)  # Cut short, as a crash can leave a file: decoded again.
        subprocess.run(["mount", "-o", "remount,size=8m", str(out)], check=True)
        again = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr[-2000:]
        assert f"{last} is damaged; decoding that batch again" in again.stderr
        assert f"distill: {kept - 1} of 8 batches were done before; going on" in again.stderr
        assert not os.path.exists(out / "d" / ".shards")
        _assert_rows_are_the_teachers_greedy_decode(teacher, str(out / "d"), batch_size=8)
