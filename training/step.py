"""The pure train and eval steps, and the optimizer.

Shape legend: B batch rows, T positions, V vocab. A batch is the dict `data` returns (inputs_BxT,
targets_BxT, loss_mask_BxT, lengths_B, prefix_lengths_B), as jax arrays; a split batch
(`data.batching.split_seq2seq`, an encoder-decoder's) adds source_BxS and source_lengths_B, and
the loss calls the model with that source encoded once (`Decoder.for_batch`). The losses are the
objectives' (objectives/): the step asks the record of `train.objective` for its loss,
its settings and whether it trains the length head.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from data import batching
from model import ModelConfig, architecture_of, make_decoder
from objectives import all_settings, objective_of, teacher_forcing_loss, with_length_loss
from sections import TrainConfig
from training import ema

Batch = dict[str, jax.Array]


def _from_train():
    """A Hyperparams field that is the TrainConfig field of its own name, traced."""
    return dataclasses.field(metadata={"from_train": True})


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Hyperparams:
    """The optimizer settings of `config.train`, and every objective's settings (by TrainConfig
    field, objectives/), passed to the step as traced scalars.

    Traced, not static: changing the learning rate or the number of steps reuses the compiled
    step (and the persistent compilation cache), so a sweep compiles once.
    """

    learning_rate: jax.Array | float = _from_train()
    warmup_steps: jax.Array | float = _from_train()
    num_steps: jax.Array | float = _from_train()
    min_learning_rate_ratio: jax.Array | float = _from_train()
    weight_decay: jax.Array | float = _from_train()
    adam_b1: jax.Array | float = _from_train()
    adam_b2: jax.Array | float = _from_train()
    grad_clip_norm: jax.Array | float = _from_train()  # 0 disables clipping.
    ema_decay: jax.Array | float = _from_train()  # Used only with `ema`.
    settings: dict[str, jax.Array]  # Every objective's settings: glancing_ratio, ...
    # Whether the optimizer keeps an EMA of the params (training/ema.py): static, because it
    # changes the optimizer state's structure; the decay itself is traced.
    ema: bool = dataclasses.field(default=False, metadata={"static": True})

    @classmethod
    def from_config(cls, train: TrainConfig) -> "Hyperparams":
        """The traced scalars of a run's TrainConfig."""
        # The optimizer's fields say they are TrainConfig's own; the objectives name theirs.
        optimizer = [f.name for f in dataclasses.fields(cls) if f.metadata.get("from_train")]
        settings = {name: jnp.float32(getattr(train, name)) for name in all_settings()}
        return cls(
            **{n: jnp.float32(getattr(train, n)) for n in optimizer},
            settings=settings,
            ema=train.ema_decay > 0,
        )


def as_trained(cfg: ModelConfig, batch: dict) -> dict:
    """A task's batch (numpy, one row per pair) as a model of `cfg` trains on it: split
    (`data.batching.split_seq2seq`) for an architecture that `trains_split`, else as it is."""
    return batching.split_seq2seq(batch) if architecture_of(cfg).trains_split else batch


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
    """Global-norm clipping, then AdamW; weight decay on matrices only (not biases or norms).
    With `hparams.ema`, last, the EMA of the params (training/ema.py), which changes no update."""
    max_norm = jnp.where(hparams.grad_clip_norm > 0, hparams.grad_clip_norm, jnp.inf)
    averaged = (ema.params_ema(hparams.ema_decay),) if hparams.ema else ()
    return optax.chain(
        optax.clip_by_global_norm(max_norm),
        optax.adamw(
            lambda count: learning_rate_at(hparams, count),
            b1=hparams.adam_b1,
            b2=hparams.adam_b2,
            weight_decay=hparams.weight_decay,
            mask=lambda params: jax.tree.map(lambda p: p.ndim >= 2, params),
        ),
        *averaged,
    )


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
    record = objective_of(objective)
    settings = {s.keyword: hparams.settings[s.name] for s in record.settings if s.keyword}
    if record.takes_progress:
        settings["progress"] = jnp.clip(step / jnp.maximum(hparams.num_steps, 1.0), 0.0, 1.0)
    loss_fn = functools.partial(record.loss, **settings)
    if record.trains_length_head:
        loss_fn = with_length_loss(loss_fn, hparams.settings["length_loss_weight"])

    def loss_of(params):
        # A split batch's source is encoded once, for every pass of the loss (model.for_batch).
        model = nnx.merge(graphdef, params).for_batch(batch, jax.random.fold_in(dropout_rng, 1))
        return loss_fn(model, batch, objective_rng, dropout_rng)

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

    The objective's `held_out_loss`, else teacher-forced CE: the CMLM loss for the masked
    objectives and the negative ELBO for diffusion (their masks and times drawn from `rng`).
    """
    loss_fn = objective_of(objective).held_out_loss or teacher_forcing_loss
    loss, count = loss_fn(nnx.merge(graphdef, params).for_batch(batch), batch, rng, None)
    return loss * count, count


def init_train_state(
    model_cfg: ModelConfig, hparams: Hyperparams, seed: int
) -> tuple[nnx.GraphDef, nnx.State, optax.OptState]:
    """(graphdef, params, opt_state) of a freshly initialised decoder."""
    graphdef, params = nnx.split(make_decoder(model_cfg, seed))
    return graphdef, params, make_optimizer(hparams).init(params)
