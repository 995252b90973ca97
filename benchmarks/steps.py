"""What the train-step benchmarks share: timing a bound train step over a list of batches."""

import time

import jax
import numpy as np


def run_steps(fn, state: list, batches: list[dict], hparams) -> float:
    """Seconds to run `fn` (training.step.bind_train_step's) over `batches` in order, one
    update each on `state` = [params, opt_state] (updated in place), blocking at the end."""
    key = jax.random.key(0)
    start = time.perf_counter()
    for step, batch in enumerate(batches):
        state[0], state[1], out = fn(state[0], state[1], batch, np.int32(step), key, hparams)
    jax.block_until_ready(out)
    return time.perf_counter() - start
