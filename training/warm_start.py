"""Warm start (`train.init_from`): a run that begins from another variant's trained params.

BD3-LM (Arriola et al. 2025) fine-tunes its block-diffusion models from an MDLM checkpoint
rather than training them from scratch (the paper's "we initialize from a pre-trained MDLM";
kuleshov-group/bd3lms, its `training.from_pretrained` setting). Here `train.init_from` names a
variant of the same experiment: a fresh run starts from the newest checkpoint of that
variant's run with the same seed (the params it is evaluated with: its EMA where it kept one),
with a fresh optimizer and schedule; a run that has checkpoints of its own resumes from them as
any run does. The source must be trained first and have the same parameter shapes (the mask
kind and block size may differ: they are no parameters); both are refused in one line, before
a step is taken. Its cost is the source's training plus this run's: the report reads both.
"""

import os

import jax
from flax import nnx

from training import checkpoints, run_folder


def source_params(init_from: str, run_dir: str, fresh: nnx.State) -> tuple[nnx.State, str, int]:
    """(the params of `init_from`'s run with this run's seed, its folder, its step), checked
    against `fresh` (this run's freshly initialised params) leaf by leaf."""
    source = run_folder.sibling_run(run_dir, init_from)
    if source is None:
        run_dir = os.path.normpath(run_dir)
        workdir, seed_folder = os.path.dirname(os.path.dirname(run_dir)), os.path.basename(run_dir)
        wanted = os.path.join(workdir, init_from, seed_folder)
        raise ValueError(
            f"train.init_from={init_from!r}: {wanted} has no checkpoint; train that variant "
            "(same seed) first"
        )
    model, _, _, step = checkpoints.load_params(source)
    _, params = nnx.split(model)
    got = jax.tree.map(lambda x: (x.shape, x.dtype), params)
    want = jax.tree.map(lambda x: (x.shape, x.dtype), fresh)
    if jax.tree.structure(got) != jax.tree.structure(want) or got != want:
        raise ValueError(
            f"train.init_from={init_from!r}: {source}'s params do not have this model's shapes "
            "(only the mask kind and block size may differ)"
        )
    return params, source, step
