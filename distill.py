"""Sequence-level knowledge distillation: a trained AR teacher decodes its task's training split,
and the result is a dataset that students train on (data/distilled.py).

  python distill.py --teacher=runs/two_alphabets/ar/seed_0 \
      --out=runs/two_alphabets_distilled [--num_examples=N] [--decoder=ar_cache]
  # then train a student with --config.data.distilled_dir=runs/two_alphabets_distilled, or a
  # variant that sets it (experiments/two_alphabets.py: nar_distilled, glat_distilled).

The teacher's prompts are the training split's first --num_examples rows (by default a TFDS
task's whole training split, once, and 64,000 rows of a synthetic task); a progress bar shows
the rows done and the time left, and provenance.json records the run time; each distilled row is
that prompt followed by the teacher's continuation (greedy by default, or any AR decoder of the
decoders table, by id: beam4 is beam search with 4 beams). provenance.json records the teacher
run, variant, seed and step, the decoder and the data config.

Each decoded batch is saved under <out>/.shards/ as it is done: a run killed, or stopped by a
full disk (which names the file it could not write and leaves no temporary behind), goes on
where it stopped when the same command is rerun; the shards go once the rows are written.
"""

import launch

launch.configure_xla_cpu()  # Before any JAX computation: XLA reads its flags once.

import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import errno  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import zipfile  # noqa: E402

import numpy as np  # noqa: E402
import tqdm  # noqa: E402
from absl import flags  # noqa: E402

import data  # noqa: E402
from data import distilled  # noqa: E402
from evaluation import decoders, scoring  # noqa: E402
from objectives import objective_of  # noqa: E402
from training import checkpoints, run_folder  # noqa: E402

_TEACHER = flags.DEFINE_string(
    "teacher", None, "A trained AR run folder: <workdir>/<variant>/seed_<s>.", required=True
)
_OUT = flags.DEFINE_string("out", None, "The folder to write the distilled data to.", required=True)
_NUM_EXAMPLES = flags.DEFINE_integer(
    "num_examples", None,
    "Training rows to distill (a student cycles through them). Default: the whole training split "
    "once for a TFDS task (its first N rows are a shuffle of it), 64,000 rows of a synthetic task.",
    lower_bound=1,
)  # fmt: skip
SYNTHETIC_ROWS = 64_000  # A synthetic task's split is endless: the default rows to distill.
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 500, "Rows decoded together.", lower_bound=1)
_DECODER = flags.DEFINE_string(
    "decoder", "ar_cache", "The id of an AR decoder of the decoders table."
)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace distilled data already in --out.")


def _teacher(run_dir: str):
    if not run_folder.checkpoint_steps(run_dir):
        raise ValueError(
            f"--teacher={run_dir} holds no trained run (no checkpoints); pass a run folder "
            "<workdir>/<variant>/seed_<s> that train.py finished"
        )
    model, _, config, step = checkpoints.load_params(run_dir)
    spec = decoders.lookup([_DECODER.value])[0]
    if spec.family != "AR" or not spec.applies_to(
        model.cfg.mask, objective_of(config.train.objective)
    ):
        raise ValueError(
            f"--decoder={spec.id} cannot decode this teacher (mask "
            f"{model.cfg.attention_mask_kind!r}, objective {config.train.objective!r}); the "
            "teacher must be an AR model and the decoder one of the table's AR decoders"
        )
    return model, config, step, spec


def _inside_checkpoints(out: str) -> str | None:
    """The checkpoints/ folder of a run that `out` lies in, if any: Orbax owns those, and a
    resume moves what it cannot read there to damaged_checkpoints/."""
    path = os.path.abspath(out)
    while os.path.dirname(path) != path:
        parent = os.path.dirname(path)
        name = os.path.basename(path)
        is_run = os.path.basename(parent).startswith(run_folder.SEED_PREFIX) or os.path.exists(
            run_folder.config_path(parent)
        )
        if name in (run_folder.CHECKPOINT_DIR, "damaged_checkpoints") and is_run:
            return path
        path = parent
    return None


def _check_out(out: str) -> None:
    """Everything about --out that can fail, checked before the teacher decodes a row."""
    if os.path.exists(os.path.join(out, distilled.ROWS)) and not _OVERWRITE.value:
        raise ValueError(
            f"--out={out} already holds distilled data; pass --overwrite to replace it"
        )
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out={out} is a file, not a folder")
    if (checkpoints_dir := _inside_checkpoints(out)) is not None:
        raise ValueError(
            f"--out={out} is inside {checkpoints_dir}, which holds a run's checkpoints (the next "
            "resume would move it to damaged_checkpoints/); choose a folder outside the run's "
            "checkpoints, e.g. runs/<name>_distilled"
        )
    existing = os.path.abspath(out)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise NotADirectoryError(f"--out={out}: {existing} is a file, not a folder")
    try:  # A real write: permissions alone miss read-only mounts (and root ignores them).
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise PermissionError(
            f"--out={out}: {existing} is not writable ({error.strerror}); choose another --out"
        ) from None


def _distill_batch(task, batch, model, spec, loss_on: str) -> dict[str, np.ndarray]:
    """The batch's prompts, each followed by the teacher's continuation."""
    P = int(batch["prefix_lengths"].max())
    if P <= 1:
        raise ValueError(f"Task {task.name!r} has no prompts to continue: nothing to distill")
    # Room for the longest continuation the row format holds (EOS included).
    max_new = min(task.seq_len + 1 - P, model.cfg.max_len + 1 - P)
    prompts = scoring.prompts_of(batch, P, max_new)
    out = spec.decode(decoders.Models(model), prompts)
    tokens_BxL, lengths_B = np.asarray(out.tokens_BxL), np.asarray(out.lengths_B)
    continuations = [
        tokens_BxL[b, start:end]
        for b, (start, end) in enumerate(zip(prompts.prompt_lengths_B, lengths_B, strict=True))
    ]
    return distilled.rows_from_continuations(batch, continuations, task.seq_len, loss_on)


def _num_examples(task) -> int:
    """--num_examples, or by default the whole training split once (a synthetic task's: 64,000)."""
    if _NUM_EXAMPLES.value is not None:
        return _NUM_EXAMPLES.value
    split_size = getattr(task, "split_size", None)
    return split_size("train") if split_size is not None else SYNTHETIC_ROWS


SHARDS = ".shards"  # Under --out: each decoded batch, kept until the whole split is done.


def _job(run_dir: str, step: int, spec, total: int, size: int) -> dict:
    """What a shard belongs to: shards of another teacher, step, decoder or batching are stale."""
    return {"teacher": os.path.abspath(run_dir), "step": step, "decoder": spec.id,
            "num_examples": total, "batch_size": size}  # fmt: skip


def _write_whole(path: str, write) -> None:
    """`write(temporary)` then a rename; a full disk names `path`, and leaves no temporary."""
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        write(temporary)
        os.replace(temporary, path)
    except OSError as error:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        if error.errno == errno.ENOSPC:
            raise OSError(
                error.errno,
                f"No space left on device writing {path}; free some space and rerun "
                "the same command: the batches done so far are kept and not decoded again",
            ) from None
        raise


def _shard_path(out: str, index: int) -> str:
    return os.path.join(out, SHARDS, f"batch_{index:06d}.npz")


def _open_shards(out: str, job: dict) -> int:
    """How many batches a killed or failed run of this same job left done (0 for a new job)."""
    folder = os.path.join(out, SHARDS)
    manifest = os.path.join(folder, "job.json")
    if os.path.exists(manifest) and _saved_job(manifest) != job:
        print(f"distill: {folder} holds batches of another job (or a damaged job.json); "
              "decoding afresh", file=sys.stderr)  # fmt: skip
        shutil.rmtree(folder)
    os.makedirs(folder, exist_ok=True)
    if not os.path.exists(manifest):
        _write_whole(manifest, lambda path: _dump_json(path, job))
    done = 0
    while os.path.exists(_shard_path(out, done)) and _readable(_shard_path(out, done)):
        done += 1
    for name in os.listdir(folder):  # A damaged batch, and any after it, are decoded again.
        if name.startswith("batch_") and int(name[6:12]) >= done:
            os.remove(os.path.join(folder, name))
    return done


def _saved_job(path: str) -> dict | None:
    try:
        return run_folder.read_json(path, "")
    except ValueError:
        return None


def _readable(path: str) -> bool:
    """Whether a saved batch loads whole (a crash or a full disk can leave one cut short)."""
    try:
        with np.load(path) as shard:
            return all(shard[key].size >= 0 for key in distilled.KEYS)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        print(f"distill: {path} is damaged; decoding that batch again", file=sys.stderr)
        return False


def _dump_json(path: str, value: dict) -> None:
    with open(path, "w") as f:
        json.dump(value, f)


def distill_rows(task, model, spec, loss_on: str, out: str, job: dict) -> dict[str, np.ndarray]:
    """Every row, decoded batch by batch; each batch is saved under --out as it is done, so a
    rerun after a kill or a full disk goes on where it stopped."""
    total, size = job["num_examples"], job["batch_size"]
    batches, done = math.ceil(total / size), _open_shards(out, job)
    if done:
        print(f"distill: {done} of {batches} batches were done before; going on", file=sys.stderr)
    with tqdm.tqdm(total=total, desc="distill", unit="row", dynamic_ncols=True) as bar:
        bar.update(min(done * size, total))
        for i in range(done, batches):
            batch = task.batch(i, size, split="train")
            batch = {key: value[: total - i * size] for key, value in batch.items()}
            part = _distill_batch(task, batch, model, spec, loss_on)
            _write_whole(_shard_path(out, i), functools.partial(_save_npz, arrays=part))
            bar.update(len(batch["prefix_lengths"]))
    parts = []
    for i in range(batches):
        with np.load(_shard_path(out, i)) as shard:
            parts.append({key: shard[key] for key in distilled.KEYS})
    return {key: np.concatenate([p[key] for p in parts]) for key in distilled.KEYS}


def _save_npz(path: str, arrays: dict) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def main(argv: list[str]) -> None:
    del argv  # launch.run refuses positional arguments.
    run_dir, out = os.path.normpath(_TEACHER.value), _OUT.value
    _check_out(out)
    model, config, step, spec = _teacher(run_dir)
    # The training split as rows, each pair once in its shuffled order (not the teacher's
    # token-count batches, which repeat a few pairs); a student re-batches the rows itself.
    task = data.make_task(dataclasses.replace(config.data, batch_tokens=0))
    size, total = _BATCH_SIZE.value, _num_examples(task)
    start = time.perf_counter()
    print(f"distill: {total:,} training rows with {spec.label}, {size} at a time", file=sys.stderr)
    if config.train.ema_decay:
        print(f"distill: the teacher's {checkpoints.evaluated_weights(config)}", file=sys.stderr)
    job = _job(run_dir, step, spec, total, size)
    rows = distill_rows(task, model, spec, config.data.loss_on, out, job)
    seconds = time.perf_counter() - start
    variant, seed = run_folder.variant_and_seed(run_dir)
    provenance = {
        "teacher": {
            "run": os.path.abspath(run_dir),
            "variant": variant,
            "seed": seed,
            "step": step,
        },
        "decoder": spec.id,
        "num_examples": total,
        "seconds": round(seconds, 1),
        "data": dataclasses.asdict(config.data),
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    try:
        distilled.write(out, rows, provenance)
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
        raise OSError(
            error.errno,
            f"No space left on device writing {os.path.join(out, distilled.ROWS)}; "
            f"free some space and rerun the same command: the decoded batches are kept in "
            f"{os.path.join(out, SHARDS)}",
        ) from None
    shutil.rmtree(os.path.join(out, SHARDS), ignore_errors=True)
    print(
        f"distill: wrote {total:,} rows of {variant} (step {step}, {spec.label}) to {out} "
        f"in {seconds:.0f} s"
    )


if __name__ == "__main__":
    launch.run(main)
