"""The AR objectives: each position predicts the next token.

teacher_forcing: every position predicts the next token from the true prefix, in one pass.
sequential: free-running AR training. The model reads its own greedy predictions, one token at
  a time through the KV cache (true tokens inside the prompt); the same masked CE on the logits.
  Through a cache every mask kind is causal (docs/model.md); O(T^2) memory for the backward pass.
"""

import jax
import jax.numpy as jnp

from model import Decoder, init_cache
from objectives.base import Batch, Objective, register_objective
from objectives.common import LABEL_SMOOTHING, masked_cross_entropy, teacher_forcing_loss

# Seen with jax 0.10.2: the gradient of the sequential objective's cached attention needs a bf16
# dot with two contracting dimensions, which XLA:CPU does not implement.
CPU_SEQUENTIAL_BF16 = (
    "XLA:CPU cannot differentiate the sequential objective in low precision (UNIMPLEMENTED: Dot "
    "with multiple contracting dimensions)"
)


def free_running_logits(model: Decoder, batch: Batch, dropout_rng: jax.Array | None) -> jax.Array:
    """Logits [B, T, V] of a model fed its own argmax after the prompt, one token per step."""
    inputs_BxT, prefix_lengths_B = batch["inputs"], batch["prefix_lengths"]
    B, T = inputs_BxT.shape

    def step(carry, t):
        cache, predicted_B = carry
        token_B = jnp.where(t < prefix_lengths_B, inputs_BxT[:, t], predicted_B)
        logits_Bx1xV, cache = model(
            token_B[:, None],
            positions_BxT=jnp.full((B, 1), t, jnp.int32),
            prefix_lengths_B=prefix_lengths_B,
            cache=cache,
            dropout_rng=None if dropout_rng is None else jax.random.fold_in(dropout_rng, t),
        )
        logits_BxV = logits_Bx1xV[:, 0]
        predicted_B = jax.lax.stop_gradient(jnp.argmax(logits_BxV, axis=-1)).astype(jnp.int32)
        return (cache, predicted_B), logits_BxV

    carry = (init_cache(model.cfg, B, T), jnp.zeros((B,), jnp.int32))
    _, logits_TxBxV = jax.lax.scan(step, carry, jnp.arange(T))
    return logits_TxBxV.swapaxes(0, 1)


def sequential_loss(
    model: Decoder,
    batch: Batch,
    rng: jax.Array,
    dropout_rng: jax.Array | None,
    smoothing: jax.Array | float = 0.0,
) -> tuple[jax.Array, jax.Array]:
    """Next-token CE of the free-running model against the true targets."""
    del rng
    logits_BxTxV = free_running_logits(model, batch, dropout_rng)
    return masked_cross_entropy(logits_BxTxV, batch["targets"], batch["loss_mask"], smoothing)


TEACHER_FORCING = register_objective(
    Objective(
        "teacher_forcing",
        "every position predicts the next token from the true prefix, in one parallel pass",
        "next_token",
        teacher_forcing_loss,
        settings=(LABEL_SMOOTHING,),
    )
)
SEQUENTIAL = register_objective(
    Objective(
        "sequential",
        "free-running AR training: the model reads its own greedy predictions, one token at a "
        "time through its KV cache",
        "next_token",
        sequential_loss,
        settings=(LABEL_SMOOTHING,),
        steps_through_cache=True,
        cpu_low_precision=CPU_SEQUENTIAL_BF16,
    )
)
