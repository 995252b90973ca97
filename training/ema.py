"""An exponential moving average (EMA) of the parameters, kept in the optimizer's state.

MDLM (Sahoo et al. 2024) and BD3-LM (Arriola et al. 2025) train with one (`training.ema:
0.9999` in kuleshov-group/mdlm's configs/config.yaml and in BD3-LM's), updated after every
optimizer step, and they validate and sample with it. This follows MDLM's class
(kuleshov-group/mdlm, models/ema.py, with its default `use_num_updates=True`; BD3-LM's
diffusion.py builds the same `models.ema.ExponentialMovingAverage` the same way): after update
n (counted from 1) has made the params p_n,

    decay_n = min(decay, (1 + n) / (10 + n))
    ema_n = decay_n * ema_(n-1) + (1 - decay_n) * p_n,    ema_0 = the initial params.

The cap (1 + n) / (10 + n) is their warm-up, and there is no Adam-style debiasing (optax.ema's
`debias`). The warm-up matters at this project's run lengths: the cap stays below 0.9999 until
n = 89,990, so a run of a few thousand updates averages over roughly its last n / 9 updates;
without it, the random initial params would still hold 0.9999^n of the average (86% at
n = 1500).

As an optax transformation placed last in the chain, the EMA is part of `opt_state`: it is
checkpointed, restored on resume and sharded like the params (optax.tree_map_params finds it,
training/mesh.py) with no code of its own. It changes no update: the params train as without it.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax


class ParamsEmaState(NamedTuple):
    """The EMA of the params, and the updates it has averaged (MDLM's `num_updates`)."""

    count: jax.Array
    ema: optax.Params


def params_ema(decay: jax.Array | float) -> optax.GradientTransformation:
    """Keeps the EMA of the params after each update (module docstring); passes the updates on
    unchanged. Put it last in a chain, so that it sees the final updates."""

    def init(params: optax.Params) -> ParamsEmaState:
        # A copy: params and opt_state are donated to the train step, and must not share buffers.
        return ParamsEmaState(jnp.zeros([], jnp.int32), jax.tree.map(jnp.copy, params))

    def update(updates, state: ParamsEmaState, params=None):
        if params is None:
            raise ValueError("params_ema needs the params: call update(updates, state, params).")
        count = optax.safe_increment(state.count)
        decay_n = jnp.minimum(decay, (1.0 + count) / (10.0 + count))
        new_params = optax.apply_updates(params, updates)
        ema = optax.incremental_update(new_params, state.ema, 1.0 - decay_n)
        ema = optax.tree_utils.tree_cast_like(ema, state.ema)  # Keep the params' dtypes.
        return updates, ParamsEmaState(count, ema)

    return optax.GradientTransformation(init, update)


def is_ema_state(node) -> bool:
    return isinstance(node, ParamsEmaState)


def ema_params(opt_state: optax.OptState) -> optax.Params | None:
    """The EMA of the params in an optimizer state (or an abstract one); None if it keeps none."""
    found = [s for s in jax.tree.leaves(opt_state, is_leaf=is_ema_state) if is_ema_state(s)]
    return found[0].ema if found else None
