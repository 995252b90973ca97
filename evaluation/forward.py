"""Jitted forward passes of a decoder: teacher-forced logits and honest (prefix-only) logits.

Shape legend: B rows, T positions, V vocab, D d_model.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from model import Decoder


@functools.partial(jax.jit, static_argnames=("graphdef",))
def _logits(graphdef, state, tokens_BxT, lengths_B, prefix_lengths_B):
    model = nnx.merge(graphdef, state)
    return model(tokens_BxT, lengths_B=lengths_B, prefix_lengths_B=prefix_lengths_B)[0]


@functools.partial(jax.jit, static_argnames=("graphdef",))
def _honest_logits(graphdef, state, tokens_BxT, lengths_B, prefix_lengths_B):
    model = nnx.merge(graphdef, state)
    T = tokens_BxT.shape[1]

    def at(t):
        # Tokens after t become padding, which every mask kind hides: position t sees x[:t+1].
        logits_BxTxV, _ = model(
            tokens_BxT,
            lengths_B=jnp.minimum(lengths_B, t + 1),
            prefix_lengths_B=prefix_lengths_B,
        )
        return logits_BxTxV[:, t]

    # lax.map (not vmap) keeps memory at one [B, T, V] forward pass, whatever T is.
    return jax.lax.map(at, jnp.arange(T)).swapaxes(0, 1)


def logits(model: Decoder, tokens_BxT, lengths_B, prefix_lengths_B) -> np.ndarray:
    """Teacher-forced logits [B, T, V] (float32): every position sees what its mask allows."""
    graphdef, state = nnx.split(model)
    return np.asarray(
        _logits(
            graphdef,
            state,
            *(jnp.asarray(a, jnp.int32) for a in (tokens_BxT, lengths_B, prefix_lengths_B)),
        )
    )


def honest_logits(model: Decoder, tokens_BxT, lengths_B, prefix_lengths_B) -> np.ndarray:
    """Logits [B, T, V] where position t is computed from the prefix x[:t+1] alone (T passes)."""
    graphdef, state = nnx.split(model)
    return np.asarray(
        _honest_logits(
            graphdef,
            state,
            *(jnp.asarray(a, jnp.int32) for a in (tokens_BxT, lengths_B, prefix_lengths_B)),
        )
    )
