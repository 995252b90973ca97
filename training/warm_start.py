"""Warm start (`train.init_from`): a run that begins from another variant's trained params.

BD3-LM (Arriola et al. 2025) fine-tunes its block-diffusion models from an MDLM checkpoint
rather than training them from scratch (the paper's "we initialize from a pre-trained MDLM";
kuleshov-group/bd3lms, its `training.from_pretrained` setting). Here `train.init_from` names a
variant of the same experiment: a fresh run starts from the newest checkpoint of that
variant's run with the same seed (the params it is evaluated with: its EMA where it kept one),
with a fresh optimizer and schedule; a run that has checkpoints of its own resumes from them as
any run does. The source must be trained first and have the same parameter shapes (the mask
kind and block size may differ: they are no parameters; the source's length head is left
behind where this model has none, as a block model that ends at its EOS); both are refused
in one line, before a step is taken; so is a source still training (at a step short of its
train.num_steps). The source and its step go to <run>/warm_start.json, and this run's training
cost (the learning curve's seconds and FLOPs, evaluation/checkpoint_history.py) starts from
the source's.
"""

import json
import os

import jax
from flax import nnx

from training import checkpoints, run_folder

# In the run folder: {"variant": the source variant, "source": its folder then, "step": its step}.
RECORD = "warm_start.json"


def record_path(run_dir: str) -> str:
    return os.path.join(run_dir, RECORD)


def started_from(run_dir: str) -> tuple[str, int] | None:
    """(the source's run folder, beside this one in its workdir wherever that is now, and its
    step) of a warm-started run; None for a fresh one."""
    path = record_path(run_dir)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        found = json.load(f)
    return _beside(run_dir, found["variant"]), int(found["step"])


def _beside(run_dir: str, variant: str) -> str:
    """The run folder of `variant` with this run's seed, in this run's workdir."""
    run_dir = os.path.normpath(run_dir)
    workdir, seed_folder = os.path.dirname(os.path.dirname(run_dir)), os.path.basename(run_dir)
    return os.path.join(workdir, variant, seed_folder)


def source_params(init_from: str, run_dir: str, fresh: nnx.State) -> tuple[nnx.State, str, int]:
    """(the params of `init_from`'s run with this run's seed, its folder, its step), checked
    against `fresh` (this run's freshly initialised params) leaf by leaf."""
    source = run_folder.sibling_run(run_dir, init_from)
    if source is None:
        raise ValueError(
            f"train.init_from={init_from!r}: {_beside(run_dir, init_from)} has no checkpoint; "
            "train that variant (same seed) first"
        )
    model, _, plan, step = checkpoints.load_params(source)
    if step != plan.train.num_steps:
        raise ValueError(
            f"train.init_from={init_from!r}: {source} is at step {step} of its "
            f"{plan.train.num_steps}; finish training it first"
        )
    # Compared and rebuilt path by path (flat states): a State rebuilt from another's items
    # nests its layers as States where a fresh split has dicts, the same paths and leaves.
    found = dict(nnx.to_flat_state(nnx.split(model)[1]))
    if "length_head" not in fresh:
        # MDLM's length head, which a block model lacks (it ends at its EOS), is left behind.
        found = {path: v for path, v in found.items() if path[0] != "length_head"}
    want = nnx.to_flat_state(fresh)
    if set(found) != {path for path, _ in want} or any(
        (found[path].value.shape, found[path].value.dtype) != (v.value.shape, v.value.dtype)
        for path, v in want
    ):
        raise ValueError(
            f"train.init_from={init_from!r}: {source}'s params do not have this model's shapes "
            "(only the mask kind and block size may differ)"
        )
    params = nnx.from_flat_state([(path, found[path]) for path, _ in want])
    if jax.process_index() == 0:  # Its cost counts in this run's (checkpoint_history).
        checkpoints.write_text_atomically(
            record_path(run_dir),
            json.dumps({"variant": init_from, "source": source, "step": step}),
        )
    return params, source, step
