"""The training loop: one run per (variant, seed), and an experiment's sweep of them.

Host-device syncs happen only at log, eval and checkpoint steps: the step metrics queue up on
the device and are fetched together, checked for NaN/inf (the first bad step is named), then
logged. A checkpoint is written only after that check, so no non-finite state is ever saved.
"""

import contextlib
import dataclasses
import os
import signal
import threading
import time

import jax
import ml_collections
import numpy as np
import tqdm
from flax import nnx
from jax.experimental import multihost_utils

from data import make_task
from experiments.base import model_config, resolve_variant, variant_names
from model import make_decoder
from training import checkpoints
from training import mesh as mesh_lib
from training import metrics as metrics_lib
from training.step import (
    Hyperparams,
    bind_train_step,
    eval_step,
    init_train_state,
    make_optimizer,
)

CHECKED_KEYS = ("loss", "grad_norm", "param_norm")
_SIGTERM = threading.Event()


@dataclasses.dataclass
class RunResult:
    """What a run ended with; `preempted` when SIGTERM stopped it (a checkpoint was saved)."""

    run_dir: str
    step: int
    params: nnx.State
    last_train: dict
    last_eval: dict
    preempted: bool = False


def run_dir_for(workdir: str, variant: str, seed: int) -> str:
    """<workdir>/<variant>/seed_<seed> (variant "default" when the experiment defines none)."""
    return os.path.join(workdir, variant or "default", f"seed_{seed}")


def run_config(config: ml_collections.ConfigDict, variant: str, seed: int):
    """The resolved variant config plus the run's `seed`: what config.json holds."""
    resolved = ml_collections.ConfigDict(resolve_variant(config, variant).to_dict())
    resolved.seed = seed
    resolved.lock()
    return resolved


@contextlib.contextmanager
def sigterm_requests_stop():
    """While active, SIGTERM sets a flag; the loop then saves a checkpoint and returns.

    Multi-process runs leave SIGTERM to JAX's preemption service (see _stop_requested).
    """
    if threading.current_thread() is not threading.main_thread() or jax.process_count() > 1:
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: _SIGTERM.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stop_requested(step: int) -> bool:
    if jax.process_count() > 1:
        # Every process must stop at the same step; JAX's preemption service agrees on one.
        return multihost_utils.reached_preemption_sync_point(step)
    return _SIGTERM.is_set()


def _initial_state(cfg, hparams, seed, mesh, manager):
    """(graphdef, params, opt_state, step): the latest checkpoint, or a fresh init."""
    replicated = mesh_lib.replicated(mesh)
    if manager.latest_step() is not None:
        graphdef, abstract_params = nnx.split(nnx.eval_shape(lambda: make_decoder(cfg, seed)))
        abstract_opt = jax.eval_shape(make_optimizer(hparams).init, abstract_params)
        template = jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated),
            (abstract_params, abstract_opt),
        )
        step, params, opt_state = checkpoints.restore_latest(manager, *template)
        return graphdef, params, opt_state, step
    graphdef, params, opt_state = init_train_state(cfg, hparams, seed)
    params, opt_state = jax.device_put((params, opt_state), replicated)
    return graphdef, params, opt_state, 0


def evaluate(graphdef, params, task, run_cfg, mesh) -> dict[str, float]:
    """Held-out loss over `train.eval_batches` batches of the eval split (token-weighted)."""
    total, count = 0.0, 0.0
    for i in range(run_cfg.train.eval_batches):
        local = task.batch(
            i,
            run_cfg.train.batch_size,
            split="eval",
            process_index=jax.process_index(),
            process_count=jax.process_count(),
        )
        batch = mesh_lib.global_batch(local, mesh)
        loss_sum, n = eval_step(
            graphdef, params, batch, jax.random.key(i), objective=run_cfg.train.objective
        )
        total, count = total + float(loss_sum), count + float(n)
    return {"loss": total / max(count, 1.0), "loss_tokens": count}


def train_variant(
    config: ml_collections.ConfigDict,
    workdir: str,
    variant: str,
    seed: int,
    *,
    overwrite: bool = False,
) -> RunResult:
    """Trains one (variant, seed) run into run_dir_for(...), resuming its latest checkpoint."""
    run_cfg = run_config(config, variant, seed)
    train = run_cfg.train
    run_dir = run_dir_for(workdir, variant, seed)
    is_main = jax.process_index() == 0
    if is_main:
        checkpoints.prepare_run_dir(run_dir, run_cfg, overwrite)
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(f"prepared {run_dir}")
    cfg, hparams = model_config(run_cfg), Hyperparams.from_config(train)
    task = make_task(run_cfg.data)
    mesh = mesh_lib.make_mesh()
    mesh_lib.check_batch_size(train.batch_size)
    manager = checkpoints.make_manager(run_dir, train.keep_checkpoints)
    graphdef, params, opt_state, start = _initial_state(cfg, hparams, seed, mesh, manager)
    seed_key = jax.random.key(seed)
    writer = metrics_lib.MetricsWriter(run_dir, enabled=is_main, keep_up_to_step=start)
    flops_per_token = metrics_lib.train_flops_per_token(cfg, task.seq_len)
    peak = train.peak_flops_per_device or metrics_lib.measure_peak_flops()
    tokens_per_step = train.batch_size * task.seq_len
    name = f"{variant or 'default'}/seed_{seed}"
    say = tqdm.tqdm.write if is_main else (lambda line: None)
    say(f"[{name}] {'resuming at step ' + str(start) if start else 'starting'} in {run_dir}")

    pending, interval = [], Interval()
    last_train, last_eval, preempted = {}, {}, False
    bar = tqdm.tqdm(
        total=train.num_steps,
        initial=start,
        desc=name,
        unit="step",
        disable=None if is_main else True,
        dynamic_ncols=True,
    )
    step_fn = bind_train_step(graphdef, train.objective)
    step, tick = start, time.perf_counter()
    while step < train.num_steps:
        local = task.batch(
            step,
            train.batch_size,
            process_index=jax.process_index(),
            process_count=jax.process_count(),
        )
        params, opt_state, step_metrics = step_fn(
            params, opt_state, mesh_lib.global_batch(local, mesh), step, seed_key, hparams
        )
        step += 1
        bar.update(1)
        pending.append((step, step_metrics))
        if step == start + 1:
            # The first step compiles: time it apart from the throughput.
            interval.rows += _checked_rows(pending, manager, run_dir)
            interval.compile_s, pending, tick = time.perf_counter() - tick, [], time.perf_counter()
        preempted = _stop_requested(step)
        last = step == train.num_steps
        do_log = step % train.log_every == 0 or last
        do_eval = train.eval_every > 0 and (step % train.eval_every == 0 or last)
        do_save = step % train.checkpoint_every == 0 or last or preempted
        if not (do_log or do_eval or do_save):
            continue
        rows = _checked_rows(pending, manager, run_dir)  # Syncs with the device.
        interval.add(rows, time.perf_counter() - tick)
        pending = []
        if do_log:
            last_train = interval.summary(tokens_per_step, flops_per_token, peak)
            interval = Interval()
            writer.write(step, "train", last_train)
            if last_train["tokens_per_s"] is not None:
                bar.set_postfix(tokens_per_s=f"{last_train['tokens_per_s']:,.0f}")
            say(_format_line(name, step, train.num_steps, last_train))
        if do_eval:
            last_eval = evaluate(graphdef, params, task, run_cfg, mesh)
            writer.write(step, "eval", last_eval)
            say(f"[{name}] step {step}: eval loss {last_eval['loss']:.4f}")
        if do_save:
            checkpoints.save(manager, step, params, opt_state)
        if preempted:
            say(f"[{name}] SIGTERM: saved step {step}; rerun the same command to resume.")
            break
        tick = time.perf_counter()
    bar.close()
    manager.wait_until_finished()
    manager.close()
    writer.close()
    say(
        f"[{name}] done at step {step}: checkpoints {run_dir}/{checkpoints.CHECKPOINT_DIR}, "
        f"metrics {run_dir}/metrics.jsonl, tensorboard --logdir {run_dir}/tensorboard"
    )
    return RunResult(run_dir, step, params, last_train, last_eval, preempted)


@dataclasses.dataclass
class Interval:
    """Host-side step metrics since the last log line, and the time the timed steps took."""

    rows: list[dict[str, float]] = dataclasses.field(default_factory=list)
    busy_s: float = 0.0
    timed_steps: int = 0
    compile_s: float | None = None  # The first step of the process: compile + run.

    def add(self, rows: list[dict[str, float]], seconds: float) -> None:
        self.rows += rows
        self.busy_s += seconds
        self.timed_steps += len(rows)

    def summary(self, tokens_per_step: int, flops_per_token: float, peak: float) -> dict:
        """The log line: loss averaged over the interval; norms and lr at its last step."""
        line = dict(self.rows[-1])
        line["loss"] = float(np.mean([row["loss"] for row in self.rows]))
        line["loss_tokens"] = float(np.sum([row["loss_tokens"] for row in self.rows]))
        line["tokens_per_s"] = line["step_time_s"] = line["mfu"] = None
        if self.timed_steps:
            line["step_time_s"] = self.busy_s / self.timed_steps
            line["tokens_per_s"] = tokens_per_step / line["step_time_s"]
            line["mfu"] = metrics_lib.mfu(flops_per_token, line["tokens_per_s"], peak)
        if self.compile_s:
            line["compile_time_s"] = self.compile_s
        return line


def _checked_rows(pending: list, manager, run_dir: str) -> list[dict[str, float]]:
    """Fetches queued step metrics; raises FloatingPointError at the first non-finite step."""
    values = jax.device_get([metrics for _, metrics in pending])
    rows = [{key: float(v) for key, v in row.items()} for row in values]
    bad = metrics_lib.first_non_finite(rows, CHECKED_KEYS)
    if bad is not None:
        manager.wait_until_finished()
        kept = manager.latest_step()
        raise FloatingPointError(
            f"Non-finite training metrics at step {pending[bad][0]} ("
            + ", ".join(f"{k}={rows[bad][k]}" for k in CHECKED_KEYS)
            + "); stopped without saving. Last good checkpoint: "
            + (f"step {kept} in {run_dir}/{checkpoints.CHECKPOINT_DIR}." if kept else "none.")
        )
    return rows


def _format_line(name: str, step: int, num_steps: int, line: dict) -> str:
    text = (
        f"[{name}] step {step}/{num_steps}  loss {line['loss']:.4f}  "
        f"lr {line['learning_rate']:.2e}  grad_norm {line['grad_norm']:.3f}"
    )
    if line["tokens_per_s"] is not None:
        text += f"  tokens/s {line['tokens_per_s']:,.0f}  mfu {line['mfu']:.1%}"
    if line.get("compile_time_s"):
        text += f"  (first step {line['compile_time_s']:.1f} s with compile)"
    return text


def train_experiment(
    config: ml_collections.ConfigDict,
    workdir: str,
    variant: str | None = None,
    *,
    overwrite: bool = False,
) -> list[RunResult]:
    """Trains every variant x seed (or one variant); writes <workdir>/experiment.json."""
    names = variant_names(config) if variant is None else [variant]
    for name in names:
        resolve_variant(config, name)  # Fail on a bad variant before any training starts.
    if jax.process_index() == 0:
        os.makedirs(workdir, exist_ok=True)
        with open(os.path.join(workdir, "experiment.json"), "w") as f:
            f.write(config.to_json(indent=2) + "\n")
    results = []
    with sigterm_requests_stop():
        for name in names:
            for seed in config.seeds:
                results.append(train_variant(config, workdir, name, seed, overwrite=overwrite))
                if results[-1].preempted:
                    return results
    return results
