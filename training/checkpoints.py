"""Run folders: config.json (checked on resume), Orbax checkpoints, and `load_params` for eval.

A checkpoint at step s holds the state after s updates: items "params" (the model's nnx.State),
"opt_state" (optax) and "meta" ({"step": s}). With the batch and the randomness pure functions of
(seed, step), restoring these three is all an exact resume needs.
"""

import json
import os
import shutil

import jax
import ml_collections
import optax
import orbax.checkpoint as ocp
from flax import nnx

from experiments.base import model_config, with_defaults
from model import Decoder, ModelConfig, make_decoder
from training import run_folder

# Keys that change what is logged or kept, not what is computed: a resume may change them.
BOOKKEEPING_KEYS = (
    "eval.",
    "train.log_every",
    "train.eval_every",
    "train.eval_batches",
    "train.checkpoint_every",
    "train.keep_checkpoints",
    "train.peak_flops_per_device",
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


def prepare_run_dir(run_dir: str, run_config: ml_collections.ConfigDict, overwrite: bool) -> None:
    """Creates run_dir and writes config.json; an existing run must have the same config.

    Raises a ValueError naming the differing keys unless `overwrite`, which wipes the folder.
    Call it on process 0 only.
    """
    config_path = run_folder.config_path(run_dir)
    # A JSON round trip turns tuples into lists, as in the saved file.
    new = json.loads(run_config.to_json())
    if overwrite and os.path.exists(run_dir):
        shutil.rmtree(run_dir)
    elif os.path.exists(config_path):
        with open(config_path) as f:
            differences = config_differences(json.load(f), new)
        if differences:
            raise ValueError(
                f"{run_dir} holds a run with a different config; pass --overwrite to wipe it, or "
                "choose another --workdir. Differences (saved -> now):\n  "
                + "\n  ".join(differences)
            )
    os.makedirs(run_dir, exist_ok=True)
    with open(config_path, "w") as f:
        f.write(run_config.to_json(indent=2) + "\n")


def make_manager(run_dir: str, keep: int) -> ocp.CheckpointManager:
    """An async Orbax manager over <run_dir>/checkpoints keeping the `keep` latest steps."""
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=True)
    return ocp.CheckpointManager(run_folder.checkpoint_dir(run_dir), options=options)


def save(
    manager: ocp.CheckpointManager, step: int, params: nnx.State, opt_state: optax.OptState
) -> None:
    """Starts an async save of the state after `step` updates (no-op if that step exists)."""
    if manager.latest_step() == step:
        return
    manager.save(
        step,
        args=ocp.args.Composite(
            params=ocp.args.StandardSave(params),
            opt_state=ocp.args.StandardSave(opt_state),
            meta=ocp.args.JsonSave({"step": step}),
        ),
    )


def restore_latest(
    manager: ocp.CheckpointManager, params: nnx.State, opt_state: optax.OptState
) -> tuple[int, nnx.State, optax.OptState] | None:
    """(step, params, opt_state) of the latest checkpoint, shaped and sharded like the given
    (possibly abstract) templates; None when there is none."""
    step = manager.latest_step()
    if step is None:
        return None
    restored = manager.restore(
        step,
        args=ocp.args.Composite(
            params=ocp.args.StandardRestore(_abstract(params)),
            opt_state=ocp.args.StandardRestore(_abstract(opt_state)),
            meta=ocp.args.JsonRestore(),
        ),
    )
    return restored.meta["step"], restored.params, restored.opt_state


def _abstract(tree):
    """ShapeDtypeStructs carrying each leaf's sharding, so restored arrays land where it was."""
    return jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None)),
        tree,
    )


def load_config(run_dir: str) -> tuple[ml_collections.ConfigDict, list[str]]:
    """The config a run was trained with (config.json) over today's defaults, and the saved keys
    that today's code no longer has (dropped)."""
    with open(run_folder.config_path(run_dir)) as f:
        return with_defaults(json.load(f))


def load_params(run_dir: str) -> tuple[Decoder, ModelConfig, ml_collections.ConfigDict, int]:
    """(decoder with the latest checkpoint's params, its ModelConfig, run config, step)."""
    config, _ = load_config(run_dir)
    cfg = model_config(config)
    template = nnx.eval_shape(lambda: make_decoder(cfg, 0))
    graphdef, abstract_params = nnx.split(template)
    with ocp.CheckpointManager(run_folder.checkpoint_dir(run_dir)) as manager:
        step = manager.latest_step()
        if step is None:
            raise FileNotFoundError(f"No checkpoint in {run_folder.checkpoint_dir(run_dir)}.")
        restored = manager.restore(
            step,
            args=ocp.args.Composite(params=ocp.args.StandardRestore(abstract_params)),
        )
    return nnx.merge(graphdef, restored.params), cfg, config, step
