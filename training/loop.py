"""The training loop: one run per (variant, seed), and an experiment's sweep of them.

Host-device syncs happen only at log, eval and checkpoint steps: the step metrics queue up on
the device and are fetched together, checked for NaN/inf (the first bad step is named), then
logged (training/log_line.py). A checkpoint is written only after that check, so no
non-finite state is ever saved.
"""

import contextlib
import dataclasses
import json
import os
import sys
import time

import jax
import numpy as np
import tqdm
from flax import nnx
from jax.experimental import multihost_utils

from data import batching, make_task, training_notes
from model import architecture_of, make_decoder
from objectives import objective_of
from sections import RunPlan
from training import checkpoints, ema, log_line, processes, run_folder, run_lock, stop, warm_start
from training import mesh as mesh_lib
from training import metrics as metrics_lib
from training.step import (
    Hyperparams,
    as_trained,
    bind_train_step,
    eval_step,
    init_train_state,
    make_optimizer,
)


@dataclasses.dataclass
class RunResult:
    """What a run ended with; `stopped_by` "SIGTERM" or "Ctrl-C" when it stopped early (after
    saving a checkpoint)."""

    run_dir: str
    step: int
    params: nnx.State
    last_train: dict
    last_eval: dict
    stopped_by: str | None = None


def _initial_state(cfg, hparams, seed, mesh, manager, run_dir: str, init_from: str = ""):
    """(graphdef, params, opt_state, step, shardings): the newest readable checkpoint, or a
    fresh init (from `init_from`'s trained params, training/warm_start.py), placed on the mesh
    (training/mesh.py); `shardings` is (params, opt_state)'s."""
    optimizer = make_optimizer(hparams)
    graphdef, abstract_params = nnx.split(nnx.eval_shape(lambda: make_decoder(cfg, seed)))
    abstract_opt = jax.eval_shape(optimizer.init, abstract_params)
    shardings = mesh_lib.state_shardings(optimizer, abstract_params, abstract_opt, mesh)
    if manager.latest_step() is not None:
        # Restored straight into this mesh's shardings, whatever mesh saved it.
        template = jax.tree.map(
            lambda x, sharding: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
            (abstract_params, abstract_opt),
            shardings,
        )
        restored = checkpoints.restore_latest(
            manager, *template, run_dir=run_dir if jax.process_index() == 0 else None
        )
        if restored is not None:
            step, params, opt_state = restored
            return graphdef, params, opt_state, step, shardings
    graphdef, params, opt_state = init_train_state(cfg, hparams, seed)
    if init_from:
        params, source, step = warm_start.source_params(init_from, run_dir, params)
        if jax.process_index() == 0:
            print(f"[{run_dir}] starting from {source}'s params (step {step})", file=sys.stderr)
        opt_state = make_optimizer(hparams).init(params)
    params, opt_state = jax.device_put((params, opt_state), shardings)
    return graphdef, params, opt_state, 0, shardings


def evaluate(run: "_Run", params, opt_state) -> dict[str, float]:
    """Held-out loss over `train.eval_batches` batches of the eval split.

    Token-weighted, as eval.py's: the summed cross-entropy over every scored token divided by
    the number of scored tokens (docs/evaluation.md). With `train.ema_decay` > 0 it is the
    loss of the EMA of the params (training/ema.py), as MDLM and BD3-LM validate and as eval.py
    reads the run; else of the params.
    """
    averaged = ema.ema_params(opt_state)
    params = params if averaged is None else averaged
    total, count = 0.0, 0.0
    for i in range(run.plan.train.eval_batches):
        loss_sum, n = eval_step(
            run.graphdef,
            params,
            run.batch(i, split="eval"),
            jax.random.key(i),
            objective=run.plan.train.objective,
        )
        total, count = total + float(loss_sum), count + float(n)
    return {"loss": total / max(count, 1.0), "loss_tokens": count}


@dataclasses.dataclass
class _Run:
    """Everything one (variant, seed) run needs while it trains."""

    name: str
    run_dir: str
    plan: RunPlan
    task: object
    mesh: object
    manager: object
    writer: metrics_lib.MetricsWriter
    hparams: Hyperparams
    graphdef: object
    shardings: tuple  # (params, opt_state): where the state lives on the mesh.
    start: int
    peak_flops: float

    def say(self, line: str) -> None:
        if jax.process_index() == 0:
            tqdm.tqdm.write(line)

    def batch(self, step: int, split: str = "train") -> dict:
        """This process's rows of batch `step`, on the mesh; split (the source apart from the
        target) for an architecture that trains so. Every process reads every row of a split
        batch, so that all agree on its widths."""
        size = self.plan.train.batch_size
        if not architecture_of(self.plan.model).trains_split:
            local = self.task.batch(
                step, size, split=split,
                process_index=jax.process_index(), process_count=jax.process_count(),
            )  # fmt: skip
            return mesh_lib.global_batch(local, self.mesh)
        whole = as_trained(self.plan.model, self.task.batch(step, size, split=split))
        rows = batching.process_rows(len(whole["inputs"]), jax.process_index(), jax.process_count())
        return mesh_lib.global_batch({k: v[rows] for k, v in whole.items()}, self.mesh)

    def step_cost(self, batch: dict) -> dict[str, float]:
        """The positions a train step on `batch` computes (rows x each stack's width, summed
        over stacks) and its FLOPs, for the throughput and MFU of the log line."""
        arch = architecture_of(self.plan.model)
        widths = sum(batch[key].shape[1] for key in ("source", "inputs") if key in batch)
        return {
            "positions": float(batch["inputs"].shape[0] * widths),
            "flops": objective_of(self.plan.train.objective).step_flops(
                arch, self.plan.model, batch
            ),
        }


def _open_run(run_plan: RunPlan, workdir: str, start: str):
    """Prepares the run folder as planned (`checkpoints.plan_start`) and restores (or
    initialises) the state: (_Run, params, opt_state)."""
    variant, seed, train = run_plan.variant, run_plan.seed, run_plan.train
    run_dir = run_folder.run_dir(workdir, variant, seed)
    if jax.process_index() == 0:
        checkpoints.prepare_run_dir(run_dir, run_plan, start)
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(f"prepared {run_dir}")
    cfg, hparams = run_plan.model, Hyperparams.from_config(train)
    task, mesh = make_task(run_plan.data), mesh_lib.make_mesh(run_plan.mesh.fsdp)
    mesh_lib.check_batch_size(train.batch_size)
    manager = checkpoints.make_manager(run_dir, train.keep_checkpoints)
    graphdef, params, opt_state, start, shardings = _initial_state(
        cfg, hparams, seed, mesh, manager, run_dir, train.init_from
    )
    run = _Run(
        name=f"{variant or run_folder.DEFAULT_VARIANT}/seed_{seed}",
        run_dir=run_dir,
        plan=run_plan,
        task=task,
        mesh=mesh,
        manager=manager,
        writer=metrics_lib.MetricsWriter(
            run_dir, enabled=jax.process_index() == 0, keep_up_to_step=start
        ),
        hparams=hparams,
        graphdef=graphdef,
        shardings=shardings,
        start=start,
        peak_flops=train.peak_flops_per_device or metrics_lib.measure_peak_flops(),
    )
    return run, params, opt_state


def train_variant(run_plan: RunPlan, workdir: str, start: str) -> RunResult:
    """Trains one (variant, seed) run into run_folder.run_dir(...), resuming its latest
    checkpoint; `start` is `checkpoints.plan_start`'s decision for it."""
    run, params, opt_state = _open_run(run_plan, workdir, start)
    train = run.plan.train
    run.say(
        f"[{run.name}] {'resuming at step ' + str(run.start) if run.start else 'starting'} "
        f"in {run.run_dir}"
    )
    for note in training_notes(run.task):
        run.say(f"[{run.name}] {note}")
    if train.ema_decay:
        run.say(
            f"[{run.name}] keeping an EMA of the params (train.ema_decay={train.ema_decay}); "
            "the held-out loss and evaluation use it"
        )
    bar = tqdm.tqdm(
        total=train.num_steps,
        initial=run.start,
        desc=run.name,
        unit="step",
        disable=None if jax.process_index() == 0 else True,
        dynamic_ncols=True,
    )
    try:
        result = _train_steps(run, params, opt_state, bar)
    finally:
        bar.close()
        run.writer.close()
        checkpoints.close(run.manager)
    run.say(
        f"[{run.name}] done at step {result.step}: checkpoints in "
        f"{run_folder.checkpoint_dir(run.run_dir)}; metrics in "
        f"{run_folder.metrics_path(run.run_dir)}; tensorboard --logdir "
        f"{run_folder.tensorboard_dir(run.run_dir)}"
    )
    return result


def _train_steps(run: _Run, params, opt_state, bar) -> RunResult:
    """The loop: steps queue on the device; logs, evals and saves sync with it."""
    train = run.plan.train
    step_fn = bind_train_step(
        run.graphdef, train.objective, (*run.shardings, mesh_lib.replicated(run.mesh))
    )
    seed_key = jax.random.key(run.plan.seed)
    pending, interval = [], log_line.Interval()
    last_train, last_eval, stopped_by = {}, {}, None
    step, tick = run.start, time.perf_counter()
    while step < train.num_steps:
        batch = run.batch(step)
        params, opt_state, step_metrics = step_fn(
            params, opt_state, batch, step, seed_key, run.hparams
        )
        step_metrics = {**step_metrics, **run.step_cost(batch)}
        step += 1
        bar.update(1)
        pending.append((step, step_metrics))
        if step == run.start + 1:
            # The first step compiles: time it apart from the throughput.
            interval.rows += log_line.checked_rows(pending, run.manager, run.run_dir)
            interval.compile_s, pending, tick = time.perf_counter() - tick, [], time.perf_counter()
        stopped_by = stop.stop_requested(step)
        last = step == train.num_steps
        do_log = step % train.log_every == 0 or last or stopped_by
        do_eval = train.eval_every > 0 and (step % train.eval_every == 0 or last)
        do_save = step % train.checkpoint_every == 0 or last or stopped_by
        if not (do_log or do_eval or do_save):
            continue
        interval.add(
            log_line.checked_rows(pending, run.manager, run.run_dir), time.perf_counter() - tick
        )
        pending = []
        if do_log:
            last_train, interval = _log_interval(run, step, interval, bar), log_line.Interval()
        if do_eval:
            last_eval = evaluate(run, params, opt_state)
            run.writer.write(step, "eval", last_eval)
            run.say(f"[{run.name}] step {step}: eval loss {last_eval['loss']:.4f}")
        if do_save:
            checkpoints.save(run.manager, step, params, opt_state)
        if stopped_by:
            checkpoints.wait(run.manager)
            run.say(
                f"[{run.name}] {stopped_by}: saved step {step}; rerun the same command to resume."
            )
            break
        tick = time.perf_counter()
    return RunResult(run.run_dir, step, params, last_train, last_eval, stopped_by)


def _log_interval(run: _Run, step: int, interval: log_line.Interval, bar) -> dict:
    positions = float(np.mean([row["positions"] for row in interval.rows]))
    flops = float(np.mean([row["flops"] for row in interval.rows]))
    line = interval.summary(positions, flops / positions, run.peak_flops)
    line["positions"], line["flops"] = positions, flops  # A step's, averaged over the interval.
    run.writer.write(step, "train", line)
    if line["tokens_per_s"] is not None:
        bar.set_postfix(tokens_per_s=f"{line['tokens_per_s']:,.0f}")
    run.say(log_line.format_line(run.name, step, run.plan.train.num_steps, line))
    return line


def plan_starts(
    plans: list[RunPlan], workdir: str, experiment_name: str, overwrite: bool
) -> list[tuple[RunPlan, str]]:
    """(plan, start) of every run, after checking everything that can be checked before a file
    is written: the workdir, the batch against the devices, and each run folder against its
    saved config. Reads only."""
    run_lock.check_free(workdir)
    run_folder.check_writable(workdir)
    run_folder.check_experiment(workdir, experiment_name)
    starts = []
    for run_plan in plans:
        mesh_lib.check_batch_size(run_plan.train.batch_size)
        mesh_lib.check_mesh(run_plan.mesh.fsdp)
        run_dir = run_folder.run_dir(workdir, run_plan.variant, run_plan.seed)
        starts.append((run_plan, checkpoints.plan_start(run_dir, run_plan, overwrite)))
    return starts


def train_experiment(
    plans: list[RunPlan], workdir: str, experiment: dict, *, overwrite: bool = False
) -> list[RunResult]:
    """Trains every planned run (plan.make_plans gives them); writes <workdir>/experiment.json,
    the experiment's config as a dict (its `name` and `variants` among it).

    Nothing is written or wiped until every run has passed `plan_starts`, so a refused start
    leaves the workdir as it was. `overwrite` wipes only the runs whose config differs.
    """
    starts = plan_starts(plans, workdir, experiment["name"], overwrite)
    # Several processes must have planned the same runs, or each would train something else.
    processes.check_same_plan_everywhere(plans)
    is_main = jax.process_index() == 0
    if is_main:
        os.makedirs(workdir, exist_ok=True)
    lock = run_lock.hold(workdir) if is_main else contextlib.nullcontext()
    results = []
    with lock, stop.signals_request_stop():
        if is_main:
            checkpoints.write_text_atomically(
                run_folder.experiment_path(workdir), json.dumps(experiment, indent=2) + "\n"
            )
        for run_plan, start in starts:
            results.append(train_variant(run_plan, workdir, start))
            if results[-1].stopped_by:
                break
    return results
