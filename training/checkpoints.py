"""Run folders: config.json (checked on resume), Orbax checkpoints, and `load_params` for eval.

A checkpoint at step s holds the state after s updates: items "params" (the model's nnx.State),
"opt_state" (optax; with `train.ema_decay` > 0 it holds the EMA of the params too, training/ema.py)
and "meta" ({"step": s}). With the batch and the randomness pure functions of (seed, step),
restoring these three is all an exact resume needs. Evaluation reads the params a run is
evaluated with (`evaluated_params_args`): the EMA when it trained with one, else the params.
"""

import contextlib
import dataclasses
import json
import os
import shutil
import sys
import time

import jax
import optax
import orbax.checkpoint as ocp
from flax import nnx

from model import Decoder, ModelConfig, make_decoder
from sections import RunPlan, load_plan
from training import ema, orbax_errors, run_folder
from training.step import Hyperparams, make_optimizer

# Keys that change what is logged or kept, not what is computed: a resume may change them.
BOOKKEEPING_KEYS = (
    "seeds",  # The experiment's other seeds: a run is its own `seed`, whatever its siblings.
    "eval.",
    "train.log_every",
    "train.eval_every",
    "train.eval_batches",
    "train.checkpoint_every",
    "train.keep_checkpoints",
    "train.peak_flops_per_device",
    "mesh.",  # Where the state lives, not what it is: a run may resume on another mesh.
)


def _flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_differences(old: dict, new: dict) -> list[str]:
    """'key: old -> new' for every key that differs and is not bookkeeping."""
    old_flat, new_flat = _flatten(old), _flatten(new)
    lines = []
    for key in sorted(set(old_flat) | set(new_flat)):
        if key.startswith(BOOKKEEPING_KEYS):
            continue
        before, after = old_flat.get(key, "<absent>"), new_flat.get(key, "<absent>")
        if before != after:
            lines.append(f"{key}: {before!r} -> {after!r}")
    return lines


def plan_start(run_dir: str, run_config: RunPlan, overwrite: bool) -> str:
    """What starting this run will do, decided before anything is written.

    "new": nothing trained yet (a fresh folder, or a start that failed before it logged or saved
    anything: its config.json is replaced); "resume": the saved config matches (keys it holds
    that today's code lacks are named and ignored); "extend": only `train.num_steps` grew, so the
    run goes on from its last checkpoint to the new end (recorded by `prepare_run_dir`);
    "overwrite": it differs and `overwrite` wipes the folder. A trained run (checkpoints, or
    metrics.jsonl beside its config.json) whose config differs otherwise is refused with a
    ValueError naming each changed key. Reads only.
    """
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise NotADirectoryError(f"{run_dir} is a file, not a run folder.")
    config_path = run_folder.config_path(run_dir)
    if not run_folder.checkpoint_steps(run_dir) and not (
        # Trained once (its checkpoints deleted since): its metrics are still there to lose.
        os.path.exists(config_path) and os.path.exists(run_folder.metrics_path(run_dir))
    ):
        return "new"
    if not os.path.exists(config_path):
        raise FileNotFoundError(
            f"{run_dir} has checkpoints but no {run_folder.CONFIG_FILE}; pass --overwrite to wipe "
            "it, or choose another --workdir."
        )
    # A JSON round trip turns tuples into lists, as in the saved file.
    try:
        saved = run_folder.read_json(config_path, "pass --overwrite to wipe this run")
    except ValueError:
        if overwrite:
            return "overwrite"
        raise
    # A key added since the run was saved takes its default, which keeps the old behaviour.
    filled, dropped = load_plan(saved)
    if dropped:
        print(f"note: {config_path} holds keys this version does not know, ignored: {dropped}",
              file=sys.stderr)  # fmt: skip
    differences = _differences(filled, run_config)
    if not differences:
        return "resume"
    longer = dataclasses.replace(
        filled, train=dataclasses.replace(filled.train, num_steps=run_config.train.num_steps)
    )
    if run_config.train.num_steps > filled.train.num_steps and not _differences(longer, run_config):
        print(
            f"note: {run_dir}: train.num_steps {filled.train.num_steps} -> "
            f"{run_config.train.num_steps}: the run goes on from its last checkpoint, and its "
            "cosine schedule now decays to the new end (recorded in extensions.jsonl)",
            file=sys.stderr,
        )
        return "extend"
    if overwrite:
        return "overwrite"
    raise ValueError(
        f"{run_dir} holds a run with a different config; pass --overwrite to wipe it, or choose "
        "another --workdir (only a larger train.num_steps continues a run). Differences "
        "(saved -> now):\n  " + "\n  ".join(differences)
    )


def _differences(saved: RunPlan, planned: RunPlan) -> list[str]:
    # A JSON round trip turns tuples into lists, as in the saved file.
    return config_differences(
        json.loads(json.dumps(saved.to_dict())), json.loads(json.dumps(planned.to_dict()))
    )


def prepare_run_dir(run_dir: str, run_config: RunPlan, start: str) -> None:
    """Carries out `plan_start`'s decision: wipes for "overwrite"; for "extend", appends the old
    and new `train.num_steps` and the step it goes on from to <run>/extensions.jsonl (the cosine
    schedule is defined on train.num_steps, so from there it decays to the new end); then writes
    config.json atomically. Call it on process 0 only, after every check has passed."""
    if start == "overwrite":
        shutil.rmtree(run_dir)
    if start == "extend":
        saved, _ = load_plan(run_folder.read_json(run_folder.config_path(run_dir)))
        steps = run_folder.checkpoint_steps(run_dir)
        record = {
            "from_num_steps": saved.train.num_steps,
            "to_num_steps": run_config.train.num_steps,
            "at_step": max(steps) if steps else 0,
            "time": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        with open(run_folder.extensions_path(run_dir), "a") as f:
            f.write(json.dumps(record) + "\n")
    os.makedirs(run_dir, exist_ok=True)
    text = json.dumps(run_config.to_dict(), indent=2)
    write_text_atomically(run_folder.config_path(run_dir), text + "\n")


def write_text_atomically(path: str, text: str) -> None:
    """Writes beside `path`, then renames: a crash leaves the old file or the new one whole."""
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "w") as f:
        f.write(text)
    os.replace(temporary, path)


def make_manager(run_dir: str, keep: int) -> ocp.CheckpointManager:
    """An async Orbax manager over <run_dir>/checkpoints keeping the `keep` latest steps."""
    orbax_errors.quiet_late_read_callbacks()
    orbax_errors.quiet_background_save_errors()
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=True)
    return ocp.CheckpointManager(run_folder.checkpoint_dir(run_dir), options=options)


def save(
    manager: ocp.CheckpointManager, step: int, params: nnx.State, opt_state: optax.OptState
) -> None:
    """Starts an async save of the state after `step` updates (no-op if that step exists).

    Orbax first waits for the previous save: if that one failed, its error is raised here, as
    `orbax_errors.SaveFailedError`."""
    if manager.latest_step() == step:
        return
    with orbax_errors.save_errors(manager):
        manager.save(
            step,
            args=ocp.args.Composite(
                params=ocp.args.StandardSave(params),
                opt_state=ocp.args.StandardSave(opt_state),
                meta=ocp.args.JsonSave({"step": step}),
            ),
        )


def wait(manager: ocp.CheckpointManager) -> None:
    """Waits for the save in flight; SaveFailedError (one line) if it failed."""
    with orbax_errors.save_errors(manager):
        manager.wait_until_finished()


def close(manager: ocp.CheckpointManager) -> None:
    """Waits for the save in flight, then closes the manager; SaveFailedError if it failed."""
    try:
        wait(manager)
    finally:
        with contextlib.suppress(Exception):  # Its only failure is the one `wait` reported.
            manager.close()


def _restore_newest_readable(manager: ocp.CheckpointManager, args_for_step, damaged: list):
    """(step, restored) of the newest checkpoint that can be read; None when there is none.

    A checkpoint that fails to load (a truncated file, a crash mid-write) is skipped with a
    one-line warning naming its step, added to `damaged`, and the next older one is tried.
    """
    orbax_errors.quiet_late_read_callbacks()  # Before: they arrive as soon as a restore fails.
    for step in sorted(manager.all_steps(), reverse=True):
        try:
            return step, manager.restore(step, args=args_for_step(step))
        except Exception as error:  # Orbax and TensorStore raise many kinds; all mean "damaged".
            damaged.append(step)
            text = " ".join(str(error).split())[:160]
            print(
                f"warning: checkpoint step {step} in {manager.directory} cannot be read "
                f"({type(error).__name__}: {text}); trying an older one.",
                file=sys.stderr,
                flush=True,
            )
    return None


def _set_aside(manager: ocp.CheckpointManager, run_dir: str, steps: list[int]) -> None:
    """Moves damaged checkpoints to <run>/damaged_checkpoints/, so that training writes those
    steps afresh (and nothing is deleted that someone may want to inspect)."""
    aside = os.path.join(run_dir, "damaged_checkpoints")
    os.makedirs(aside, exist_ok=True)
    for step in steps:
        target = os.path.join(aside, f"{step}-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(os.path.join(run_folder.checkpoint_dir(run_dir), str(step)), target)
        print(f"warning: moved the damaged checkpoint step {step} to {target}.", file=sys.stderr)
    manager.reload()


def restore_latest(
    manager: ocp.CheckpointManager,
    params: nnx.State,
    opt_state: optax.OptState,
    run_dir: str | None = None,
) -> tuple[int, nnx.State, optax.OptState] | None:
    """(step, params, opt_state) of the newest readable checkpoint, shaped and sharded like the
    given (possibly abstract) templates; None when there is none. With `run_dir` (a resume, on
    the process that writes), damaged newer checkpoints are set aside."""
    damaged = []
    found = _restore_newest_readable(
        manager,
        lambda step: ocp.args.Composite(
            params=ocp.args.StandardRestore(_abstract(params)),
            opt_state=ocp.args.StandardRestore(_abstract(opt_state)),
            meta=ocp.args.JsonRestore(),
        ),
        damaged,
    )
    if damaged and run_dir is not None:
        _set_aside(manager, run_dir, damaged)
    if found is None:
        return None
    _, restored = found
    return restored.meta["step"], restored.params, restored.opt_state


def _abstract(tree):
    """ShapeDtypeStructs carrying each leaf's sharding, so restored arrays land where it was."""
    return jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None)),
        tree,
    )


def load_config(run_dir: str) -> tuple[RunPlan, list[str]]:
    """The plan a run was trained with (config.json) over today's defaults, and the saved keys
    that today's code no longer has (dropped)."""
    return load_plan(run_folder.read_json(run_folder.config_path(run_dir)))


def evaluated_params_args(config: RunPlan, abstract_params: nnx.State) -> ocp.args.Composite:
    """Restore args that read, from one checkpoint of a run planned by `config`, the params it
    is evaluated with: the EMA of its params when it trained with one (`train.ema_decay` > 0,
    training/ema.py), else its params. The EMA is read alone out of the optimizer state
    (ocp.PLACEHOLDER skips Adam's moments). `abstract_params` say where the arrays land."""
    if not config.train.ema_decay:
        return ocp.args.Composite(params=ocp.args.StandardRestore(abstract_params))
    abstract_opt = jax.eval_shape(
        make_optimizer(Hyperparams.from_config(config.train)).init, abstract_params
    )
    template = jax.tree.map(
        lambda node: (
            node._replace(count=ocp.PLACEHOLDER, ema=abstract_params)
            if ema.is_ema_state(node)
            else ocp.PLACEHOLDER
        ),
        abstract_opt,
        is_leaf=ema.is_ema_state,
    )
    restore_args = ocp.checkpoint_utils.construct_restore_args(template)
    return ocp.args.Composite(opt_state=ocp.args.PyTreeRestore(template, restore_args))


def evaluated_params(config: RunPlan, restored) -> nnx.State:
    """The params that `evaluated_params_args(config, ...)` read, out of what Orbax restored."""
    return ema.ema_params(restored.opt_state) if config.train.ema_decay else restored.params


def evaluated_weights(config: RunPlan) -> str:
    """What evaluation reads of a run, for the log: "params" or "EMA params (decay d)"."""
    decay = config.train.ema_decay
    return f"EMA params (train.ema_decay={decay})" if decay else "params"


def load_params(run_dir: str) -> tuple[Decoder, ModelConfig, RunPlan, int]:
    """(decoder with the latest checkpoint's params, its ModelConfig, run plan, step); the
    params are the EMA when the run trained with one (`evaluated_params_args`)."""
    config, _ = load_config(run_dir)
    cfg = config.model
    graphdef, abstract_params = nnx.split(nnx.eval_shape(lambda: make_decoder(cfg, 0)))
    # Restore onto this process's first device, whatever topology saved it (a pod, 8 devices).
    here = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    abstract_params = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=here), abstract_params
    )
    args = evaluated_params_args(config, abstract_params)
    with ocp.CheckpointManager(run_folder.checkpoint_dir(run_dir)) as manager:
        found = _restore_newest_readable(manager, lambda step: args, damaged=[])
    if found is None:
        raise FileNotFoundError(f"No readable checkpoint in {run_folder.checkpoint_dir(run_dir)}.")
    step, restored = found
    return nnx.merge(graphdef, evaluated_params(config, restored)), cfg, config, step
