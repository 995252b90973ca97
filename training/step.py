"""The pure train and eval steps, the optimizer, and the training objectives.

Shape legend: B batch rows, T positions, V vocab. A batch is the dict `data` returns (inputs_BxT,
targets_BxT, loss_mask_BxT, lengths_B, prefix_lengths_B), as jax arrays.

Objectives (`train.objective`):
  teacher_forcing: every position predicts the next token from the true prefix, in one pass.
  sequential: free-running AR training. The model reads its own greedy predictions, one token at
    a time through the KV cache (true tokens inside the prompt); the same masked CE on the logits.
    Through a cache every mask kind is causal (docs/model.md); O(T^2) memory for the
    backward pass.
  masked: CMLM (mask-predict). `model.nar_masks.cmlm_mask` hides k ~ U{1..m} target tokens, and a
    model whose targets see each other (mask prefix_full or full) predicts them from both sides.
  glancing: GLAT (Qian et al. 2021). A first pass (no gradient) predicts every target token
    from MASKs; `model.nar_masks.glancing_mask` reveals glancing_ratio x its errors reference
    tokens, and a second pass learns the rest. It trains one-pass (K=1) decoding.
  diffusion: masked diffusion (MDLM; BD3-LM under block_causal). Each target token is MASK with
    probability t ~ U(0, 1] (per block under block_causal), and the loss is the negative ELBO per
    target token, an upper bound on the NLL (model/diffusion.py).
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from data import vocab
from model import Decoder, ModelConfig, cmlm_mask, glancing_mask, init_cache, make_decoder
from model.diffusion import negative_elbo
from training.config import LENGTH_HEAD_OBJECTIVES, TrainConfig

Batch = dict[str, jax.Array]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Hyperparams:
    """The optimizer settings of `config.train`, passed to the step as traced scalars.

    Traced, not static: changing the learning rate or the number of steps reuses the compiled
    step (and the persistent compilation cache), so a sweep compiles once.
    """

    learning_rate: jax.Array | float
    warmup_steps: jax.Array | float
    num_steps: jax.Array | float
    min_learning_rate_ratio: jax.Array | float
    weight_decay: jax.Array | float
    adam_b1: jax.Array | float
    adam_b2: jax.Array | float
    grad_clip_norm: jax.Array | float  # 0 disables clipping.
    glancing_ratio: jax.Array | float  # objective="glancing" only.
    length_loss_weight: jax.Array | float  # CMLM objectives with a length head only.
    label_smoothing: jax.Array | float  # The training loss only; the held-out loss is plain CE.
    diffusion_eps: jax.Array | float  # objective="diffusion": training times in (eps, 1].

    @classmethod
    def from_config(cls, train: TrainConfig) -> "Hyperparams":
        """The traced scalars of a run's TrainConfig."""
        names = [field.name for field in dataclasses.fields(cls)]
        return cls(**{name: jnp.float32(getattr(train, name)) for name in names})


def learning_rate_at(hparams: Hyperparams, step: jax.Array) -> jax.Array:
    """Linear warmup to the peak, then cosine decay to min_learning_rate_ratio * peak.

    Update `step` (0-based) of the warmup uses (step + 1) / warmup_steps of the peak, so the
    first update is not wasted at a learning rate of 0.
    """
    step = jnp.asarray(step, jnp.float32)
    warmup = hparams.learning_rate * (step + 1.0) / jnp.maximum(hparams.warmup_steps, 1.0)
    decay_steps = jnp.maximum(hparams.num_steps - hparams.warmup_steps, 1.0)
    progress = jnp.clip((step - hparams.warmup_steps) / decay_steps, 0.0, 1.0)
    floor = hparams.min_learning_rate_ratio
    cosine = floor + (1.0 - floor) * 0.5 * (1.0 + jnp.cos(jnp.pi * progress))
    return jnp.where(step < hparams.warmup_steps, warmup, hparams.learning_rate * cosine)


def make_optimizer(hparams: Hyperparams) -> optax.GradientTransformation:
    """Global-norm clipping, then AdamW; weight decay on matrices only (not biases or norms)."""
    max_norm = jnp.where(hparams.grad_clip_norm > 0, hparams.grad_clip_norm, jnp.inf)
    return optax.chain(
        optax.clip_by_global_norm(max_norm),
        optax.adamw(
            lambda count: learning_rate_at(hparams, count),
            b1=hparams.adam_b1,
            b2=hparams.adam_b2,
            weight_decay=hparams.weight_decay,
            mask=lambda params: jax.tree.map(lambda p: p.ndim >= 2, params),
        ),
    )


def masked_cross_entropy(
    logits_BxTxV: jax.Array,
    targets_BxT: jax.Array,
    loss_mask_BxT: jax.Array,
    smoothing: jax.Array | float = 0.0,
) -> tuple[jax.Array, jax.Array]:
    """(mean CE over the masked positions, number of masked positions).

    With `smoothing` = eps the target is (1 - eps) one-hot + eps uniform over the vocabulary
    (Szegedy et al. 2016; fairseq's label_smoothed_cross_entropy): CE = (1 - eps) NLL +
    eps mean_v(-log p_v), computed without a one-hot.
    """
    logits_BxTxV = logits_BxTxV.astype(jnp.float32)
    log_z_BxT = jax.nn.logsumexp(logits_BxTxV, axis=-1)
    target_logit_BxT = jnp.take_along_axis(logits_BxTxV, targets_BxT[..., None], axis=-1)[..., 0]
    nll_BxT = log_z_BxT - target_logit_BxT
    uniform_BxT = log_z_BxT - logits_BxTxV.mean(axis=-1)
    ce_BxT = (1.0 - smoothing) * nll_BxT + smoothing * uniform_BxT
    count = loss_mask_BxT.sum()
    return (ce_BxT * loss_mask_BxT).sum() / jnp.maximum(count, 1.0), count


def teacher_forcing_loss(
    model: Decoder,
    batch: Batch,
    rng: jax.Array,
    dropout_rng: jax.Array | None,
    smoothing: jax.Array | float = 0.0,
) -> tuple[jax.Array, jax.Array]:
    """Next-token CE with the true prefix at every position (one parallel pass)."""
    del rng
    logits_BxTxV, _ = model(
        batch["inputs"],
        lengths_B=batch["lengths"],
        prefix_lengths_B=batch["prefix_lengths"],
        dropout_rng=dropout_rng,
    )
    return masked_cross_entropy(logits_BxTxV, batch["targets"], batch["loss_mask"], smoothing)


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


def length_loss(model: Decoder, batch: Batch) -> jax.Array:
    """Mean CE of the length head on each row's target length (EOS excluded), from its prompt."""
    # The whole row goes in; keys past each prompt are padding to the length head's pass.
    logits_BxC = model.length_logits(batch["inputs"], batch["prefix_lengths"])
    target_lengths_B = batch["lengths"] - batch["prefix_lengths"]
    return optax.softmax_cross_entropy_with_integer_labels(logits_BxC, target_lengths_B).mean()


def with_length_loss(loss_fn, weight):
    """`loss_fn` plus weight x the length head's loss, for a model that has one."""

    def loss(model, batch, rng, dropout_rng):
        value, count = loss_fn(model, batch, rng, dropout_rng)
        if model.cfg.length_head:
            value = value + weight * length_loss(model, batch)
        return value, count

    return loss


def masked_loss(
    model: Decoder,
    batch: Batch,
    rng: jax.Array,
    dropout_rng: jax.Array | None,
    smoothing: jax.Array | float = 0.0,
) -> tuple[jax.Array, jax.Array]:
    """CMLM: CE on the target tokens that `model.nar_masks.cmlm_mask` replaced by MASK."""
    tokens_BxT, targets_BxT, loss_mask_BxT = cmlm_mask(
        batch["inputs"], batch["prefix_lengths"], batch["lengths"], rng, mask_id=vocab.MASK
    )
    logits_BxTxV, _ = model(
        tokens_BxT,
        lengths_B=batch["lengths"],
        prefix_lengths_B=batch["prefix_lengths"],
        dropout_rng=dropout_rng,
    )
    return masked_cross_entropy(
        logits_BxTxV, targets_BxT, loss_mask_BxT.astype(jnp.float32), smoothing
    )


def glancing_loss(
    model: Decoder,
    batch: Batch,
    rng: jax.Array,
    dropout_rng: jax.Array | None,
    ratio: jax.Array | float = 0.5,
    smoothing: jax.Array | float = 0.0,
) -> tuple[jax.Array, jax.Array]:
    """GLAT: CE on the target tokens still masked after glancing at the first pass's errors."""
    call = functools.partial(
        model, lengths_B=batch["lengths"], prefix_lengths_B=batch["prefix_lengths"]
    )
    T = batch["inputs"].shape[1]
    cols_1xT = jnp.arange(T)[None, :]
    span_BxT = (cols_1xT >= batch["prefix_lengths"][:, None]) & (
        cols_1xT < batch["lengths"][:, None]
    )
    first_logits_BxTxV, _ = call(jnp.where(span_BxT, vocab.MASK, batch["inputs"]))
    predicted_BxT = jnp.argmax(jax.lax.stop_gradient(first_logits_BxTxV), axis=-1)
    tokens_BxT, loss_mask_BxT = glancing_mask(
        batch["inputs"], batch["prefix_lengths"], batch["lengths"], predicted_BxT, ratio, rng,
        mask_id=vocab.MASK,
    )  # fmt: skip
    logits_BxTxV, _ = call(tokens_BxT, dropout_rng=dropout_rng)
    return masked_cross_entropy(logits_BxTxV, batch["inputs"], loss_mask_BxT, smoothing)


def diffusion_loss(
    model: Decoder,
    batch: Batch,
    rng: jax.Array,
    dropout_rng: jax.Array | None,
    eps: jax.Array | float = 0.0,
    counts: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """Masked diffusion: the negative ELBO per target token (model/diffusion.py), times in
    (eps, 1]; the held-out loss masks by count (`counts`), an unbiased and steadier estimate."""
    return negative_elbo(
        model, batch["inputs"], batch["prefix_lengths"], batch["lengths"], rng,
        mask_id=vocab.MASK, eps=eps, counts=counts, dropout_rng=dropout_rng,
    )  # fmt: skip


OBJECTIVE_LOSSES = {
    "teacher_forcing": teacher_forcing_loss,
    "sequential": sequential_loss,
    "masked": masked_loss,
    "glancing": glancing_loss,
    "diffusion": diffusion_loss,
}
# The traced hyperparameters each objective's loss takes: its keyword -> the Hyperparams field.
_SMOOTHING = {"smoothing": "label_smoothing"}
OBJECTIVE_HPARAMS = {
    "teacher_forcing": _SMOOTHING, "sequential": _SMOOTHING, "masked": _SMOOTHING,
    "glancing": {**_SMOOTHING, "ratio": "glancing_ratio"}, "diffusion": {"eps": "diffusion_eps"},
}  # fmt: skip
# The held-out loss of each objective (teacher-forced CE for any other): CMLM's masked CE, as its
# model is no next-token predictor; diffusion's bound, masked by count with eps = 0 (unbiased).
HELD_OUT_LOSSES = {
    "masked": masked_loss,
    "glancing": masked_loss,
    "diffusion": functools.partial(diffusion_loss, counts=True),
}


def train_step_fn(
    graphdef: nnx.GraphDef,
    params: nnx.State,
    opt_state: optax.OptState,
    batch: Batch,
    step: jax.Array,
    seed_key: jax.Array,
    hparams: Hyperparams,
    *,
    objective: str,
) -> tuple[nnx.State, optax.OptState, dict[str, jax.Array]]:
    """One optimizer update; randomness is fold_in(seed_key, step), so a run is a function of it.

    `step` counts the updates done before this one (the batch index). Returns the new params and
    optimizer state (the inputs are donated) and scalar metrics.
    """
    rng = jax.random.fold_in(seed_key, step)
    objective_rng, dropout_rng = jax.random.split(rng)
    settings = {key: getattr(hparams, name) for key, name in OBJECTIVE_HPARAMS[objective].items()}
    loss_fn = functools.partial(OBJECTIVE_LOSSES[objective], **settings)
    if objective in LENGTH_HEAD_OBJECTIVES:
        loss_fn = with_length_loss(loss_fn, hparams.length_loss_weight)

    def loss_of(params):
        return loss_fn(nnx.merge(graphdef, params), batch, objective_rng, dropout_rng)

    (loss, num_tokens), grads = jax.value_and_grad(loss_of, has_aux=True)(params)
    updates, opt_state = make_optimizer(hparams).update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    metrics = {
        "loss": loss,
        "loss_tokens": num_tokens,
        "learning_rate": learning_rate_at(hparams, step),
        "grad_norm": optax.global_norm(grads),
        "update_norm": optax.global_norm(updates),
        "param_norm": optax.global_norm(params),
    }
    return params, opt_state, metrics


train_step = jax.jit(
    train_step_fn,
    static_argnames=("graphdef", "objective"),
    donate_argnames=("params", "opt_state"),
)


def bind_train_step(graphdef: nnx.GraphDef, objective: str, out_shardings=None):
    """`train_step` with graphdef and objective fixed: the callable a training loop should use.

    `fn(params, opt_state, batch, step, seed_key, hparams) -> (params, opt_state, metrics)`,
    the same compiled program. jit hashes static arguments on every call, and hashing an NNX
    GraphDef walks the whole module graph: on an H100 host that was ~0.4 ms of a 1.7 ms step
    for the demo's model. A closure skips the hash. `out_shardings` (params, opt_state,
    metrics) keeps a sharded state where it is (training/mesh.py); None lets XLA choose.
    """

    def step_fn(params, opt_state, batch, step, seed_key, hparams):
        return train_step_fn(
            graphdef, params, opt_state, batch, step, seed_key, hparams, objective=objective
        )

    return jax.jit(step_fn, donate_argnums=(0, 1), out_shardings=out_shardings)


@functools.partial(jax.jit, static_argnames=("graphdef", "objective"))
def eval_step(
    graphdef: nnx.GraphDef, params: nnx.State, batch: Batch, rng: jax.Array, *, objective: str
) -> tuple[jax.Array, jax.Array]:
    """(summed loss, token count) of the held-out loss, without dropout.

    `HELD_OUT_LOSSES[objective]`, else teacher-forced CE: the CMLM loss for the masked
    objectives and the negative ELBO for diffusion (their masks and times drawn from `rng`).
    """
    loss_fn = HELD_OUT_LOSSES.get(objective, teacher_forcing_loss)
    loss, count = loss_fn(nnx.merge(graphdef, params), batch, rng, None)
    return loss * count, count


def init_train_state(
    model_cfg: ModelConfig, hparams: Hyperparams, seed: int
) -> tuple[nnx.GraphDef, nnx.State, optax.OptState]:
    """(graphdef, params, opt_state) of a freshly initialised decoder."""
    graphdef, params = nnx.split(make_decoder(model_cfg, seed))
    return graphdef, params, make_optimizer(hparams).init(params)
