"""A run's checkpoint history: the steps its folder keeps, the model at any of them, the model
whose parameters are the mean of the last few (checkpoint averaging), and the training compute
spent to reach each (`training_cost`).

Training keeps the newest `train.keep_checkpoints` checkpoints, one every
`train.checkpoint_every` steps (training/checkpoints.py). Averaging the parameters of the last k
of them gives a model that is usually better than the last one alone: Vaswani et al. 2017
averaged the last 5 (written every 10 minutes), and fairseq's scripts/average_checkpoints.py
does the same, elementwise, over the last k files. Here floating-point leaves are averaged in
float32 and cast back to their dtype; any other leaf is the newest checkpoint's.

A run that trained with an EMA of its params (`train.ema_decay`) is read as its EMA at every
step, as eval.py reads it (training/checkpoints.py: `evaluated_params_args`), so the curve and
the average are of the weights that are evaluated.

A checkpoint that cannot be read (a crash mid-write, a truncated file, one that training deleted
while this read the folder) is skipped with a one-line warning naming its step, as training's
resume does. Restores go to this process's first device, whatever topology saved them.
"""

import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import Iterator, Sequence

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
from flax import nnx

from model import Decoder, ModelConfig, make_decoder
from sections import RunPlan
from training import checkpoints, orbax_errors, run_folder, warm_start


def kept_steps(run_dir: str) -> list[int]:
    """The steps whose checkpoint the run folder keeps, ascending ([] when none)."""
    return run_folder.checkpoint_steps(run_dir)


def _template(cfg: ModelConfig) -> tuple[nnx.GraphDef, nnx.State]:
    """The decoder's graphdef, and its params as ShapeDtypeStructs on the first device."""
    graphdef, abstract = nnx.split(nnx.eval_shape(lambda: make_decoder(cfg, 0)))
    here = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return graphdef, jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=here), abstract
    )


@contextlib.contextmanager
def _manager(run_dir: str) -> Iterator[ocp.CheckpointManager]:
    if not kept_steps(run_dir):
        raise FileNotFoundError(
            f"No checkpoint in {run_folder.checkpoint_dir(run_dir)}; train this run first."
        )
    with ocp.CheckpointManager(run_folder.checkpoint_dir(run_dir)) as manager:
        yield manager


def _read(
    manager: ocp.CheckpointManager, step: int, args: ocp.args.Composite, config: RunPlan
) -> nnx.State | None:
    """The params saved at `step` that the run is evaluated with (its EMA, if it kept one:
    `checkpoints.evaluated_params_args`); None, with a one-line warning, when they cannot be
    read."""
    try:
        return checkpoints.evaluated_params(config, manager.restore(step, args=args))
    except Exception as error:  # Orbax and TensorStore raise many kinds; all mean "damaged".
        text = " ".join(str(error).split())[:160]
        print(
            f"warning: checkpoint step {step} in {manager.directory} cannot be read "
            f"({type(error).__name__}: {text}); skipped.",
            file=sys.stderr,
            flush=True,
        )
        return None


def models(
    run_dir: str, steps: Sequence[int] | None = None, ema: bool = True
) -> Iterator[tuple[int, Decoder]]:
    """(step, model) for each readable checkpoint of `steps` (default: every kept one), in the
    order given, each read when the caller asks for it; a damaged one is skipped with a
    warning. `ema=False` reads a run's trained params even where it kept their EMA (which it is
    evaluated with): benchmarks/ema.py compares the two."""
    config, _ = checkpoints.load_config(run_dir)
    if not ema:
        config = dataclasses.replace(config, train=dataclasses.replace(config.train, ema_decay=0.0))
    kept = kept_steps(run_dir)
    steps = kept if steps is None else list(steps)
    missing = [step for step in steps if step not in kept]
    if missing:
        raise ValueError(f"{run_dir} keeps no checkpoint at steps {missing}; it keeps {kept}.")
    graphdef, abstract = _template(config.model)
    args = checkpoints.evaluated_params_args(config, abstract)
    orbax_errors.quiet_late_read_callbacks()  # Before: they can arrive as soon as a read fails.
    with _manager(run_dir) as manager:
        for step in steps:
            params = _read(manager, step, args, config)
            if params is not None:
                yield step, nnx.merge(graphdef, params)


def model_at(run_dir: str, step: int) -> Decoder:
    """The model saved at `step`; a ValueError when the folder does not keep it or it is damaged."""
    for _, model in models(run_dir, [step]):
        return model
    raise ValueError(f"The checkpoint at step {step} in {run_dir} cannot be read (see above).")


def mean_params(states: Sequence[nnx.State]) -> nnx.State:
    """The elementwise mean of params of one structure (floating leaves; others: the last's)."""
    if not states:
        raise ValueError("mean_params needs at least one state to average.")

    return _mean(list(states))


@jax.jit
def _mean(states: list[nnx.State]) -> nnx.State:
    """One compiled program for the whole tree (leaf by leaf, each op would compile alone)."""

    def mean(*leaves):
        if not jnp.issubdtype(leaves[-1].dtype, jnp.floating):
            return leaves[-1]
        total = sum(leaf.astype(jnp.float32) for leaf in leaves)
        return (total / len(leaves)).astype(leaves[-1].dtype)

    return jax.tree.map(mean, *states)


def averaged_model(run_dir: str, last: int, up_to: int | None = None) -> tuple[Decoder, list[int]]:
    """The model whose params are the mean of the newest `last` readable checkpoints (at steps
    <= `up_to`, if given: an eval beside a training run keeps to the step it evaluates), and
    their steps (ascending; fewer when the folder keeps fewer). Damaged ones are skipped with a
    warning and the next older one is taken in their place."""
    if isinstance(last, bool) or not isinstance(last, int) or last < 1:
        raise ValueError(f"The number of checkpoints to average must be an int >= 1, got {last!r}.")
    read = []
    steps = [s for s in kept_steps(run_dir) if up_to is None or s <= up_to]
    for step, model in models(run_dir, sorted(steps, reverse=True)):
        read.append((step, model))
        if len(read) == last:
            break
    if not read:
        raise FileNotFoundError(f"No readable checkpoint in {run_folder.checkpoint_dir(run_dir)}.")
    read.reverse()  # Oldest first: the newest is the last, whose non-float leaves are kept.
    graphdef, _ = nnx.split(read[-1][1])
    params = mean_params([nnx.state(model) for _, model in read])
    return nnx.merge(graphdef, params), [step for step, _ in read]


def training_cost(run_dir: str, steps: Sequence[int]) -> tuple[list, list]:
    """(training seconds, training FLOPs) spent to reach each of `steps`, from the run's
    metrics.jsonl: each train line covers the steps since the one before it, at its mean step
    time and FLOPs (training/loop.py), plus the first step's compile time; a step inside a
    line's span is costed at that line's rate. None where the log does not reach a step, or
    (FLOPs) where a line predates the logged count. A warm-started run (train.init_from)
    adds its source's cost to its step (training/warm_start.py)."""
    mine = _own_cost(run_dir, steps)
    source = warm_start.started_from(run_dir)
    if source is None:
        return mine
    (base_s,), (base_flops,) = training_cost(source[0], [source[1]])
    return tuple(
        [None if v is None or base is None else base + v for v in values]
        for values, base in zip(mine, (base_s, base_flops), strict=True)
    )


def _own_cost(run_dir: str, steps: Sequence[int]) -> tuple[list, list]:
    """`training_cost` of the run's own steps, from its metrics.jsonl."""
    path = run_folder.metrics_path(run_dir)
    rows = []
    if os.path.exists(path):
        with open(path) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    spans = []  # (first step, last step, seconds before, FLOPs before, row)
    seconds, flops, done = 0.0, 0.0, 0
    for row in sorted((r for r in rows if r.get("split") == "train"), key=lambda r: r["step"]):
        if row["step"] <= done or row.get("step_time_s") is None:
            continue
        seconds += row.get("compile_time_s") or 0.0
        spans.append((done, row["step"], seconds, flops, row))
        seconds += row["step_time_s"] * (row["step"] - done)
        flops = (
            None
            if flops is None or "flops" not in row
            else flops + row["flops"] * (row["step"] - done)
        )
        done = row["step"]
    out_seconds, out_flops = [], []
    for step in steps:
        span = next((s for s in spans if s[0] < step <= s[1]), None)
        if span is None:
            out_seconds.append(None)
            out_flops.append(None)
            continue
        start, _, before_s, before_flops, row = span
        out_seconds.append(before_s + row["step_time_s"] * (step - start))
        has_flops = before_flops is not None and "flops" in row
        out_flops.append(before_flops + row["flops"] * (step - start) if has_flops else None)
    return out_seconds, out_flops
