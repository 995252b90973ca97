"""The `train` section of every experiment config: its defaults live here and nowhere else."""

import math

import ml_collections

OBJECTIVES = ("teacher_forcing", "sequential", "masked", "glancing")
# The non-AR objectives: the model fills masked target tokens (decoded by mask-predict).
MASKED_OBJECTIVES = ("masked", "glancing")
# Seen with jax 0.10.2: the gradient of the sequential objective's cached attention needs a bf16
# dot with two contracting dimensions, which XLA:CPU does not implement.
CPU_SEQUENTIAL_BF16 = (
    "XLA:CPU cannot differentiate the sequential objective in low precision (UNIMPLEMENTED: Dot "
    "with multiple contracting dimensions)"
)


def default_train_config() -> ml_collections.ConfigDict:
    """Defaults for `config.train`; experiments override what they need."""
    config = ml_collections.ConfigDict()
    config.objective = "teacher_forcing"  # One of OBJECTIVES.
    config.batch_size = 64  # Global: split over processes and devices.
    config.num_steps = 2000
    config.learning_rate = 1e-3  # Peak, after linear warmup; then cosine decay.
    config.warmup_steps = 100
    config.min_learning_rate_ratio = 0.1  # Cosine decays to this fraction of the peak.
    config.weight_decay = 0.01  # AdamW; applied to matrices only (not biases, norms).
    config.adam_b1 = 0.9
    config.adam_b2 = 0.98
    config.grad_clip_norm = 1.0  # Global-norm clipping; 0 disables it.
    # objective="glancing" (GLAT): reference tokens revealed per error of the first pass.
    config.glancing_ratio = 0.5
    # masked / glancing with model.length_head: weight of the length head's cross-entropy in the
    # loss (fairseq's length_loss_factor).
    config.length_loss_weight = 0.1
    config.log_every = 50
    config.eval_every = 500  # Held-out loss every so many steps (and at the end); 0: never.
    config.eval_batches = 4
    config.checkpoint_every = 500  # Also at the end and on SIGTERM.
    config.keep_checkpoints = 2
    config.peak_flops_per_device = 0.0  # For MFU; 0: measured once by a matmul benchmark.
    return config


_RANGES = {
    "learning_rate": (lambda v: v > 0, "> 0"),
    "warmup_steps": (lambda v: v >= 0, ">= 0"),
    "min_learning_rate_ratio": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "weight_decay": (lambda v: v >= 0, ">= 0"),
    "adam_b1": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "adam_b2": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "grad_clip_norm": (lambda v: v >= 0, ">= 0 (0: no clipping)"),
    "glancing_ratio": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "length_loss_weight": (lambda v: v >= 0, ">= 0"),
    "peak_flops_per_device": (lambda v: v >= 0, ">= 0 (0: measured)"),
}


def default_mesh_config() -> ml_collections.ConfigDict:
    """Defaults for `config.mesh`: devices per FSDP group; the data axis takes the rest."""
    config = ml_collections.ConfigDict()
    config.fsdp = 1  # 1: plain data parallelism (params replicated); 4: each param split in 4.
    return config


def check_train_config(train: ml_collections.ConfigDict) -> None:
    """Raises a ValueError naming the first `train` setting that cannot train."""
    if train.objective not in OBJECTIVES:
        raise ValueError(f"train.objective={train.objective!r}; expected one of {OBJECTIVES}.")
    for key in ("batch_size", "num_steps", "log_every", "checkpoint_every", "keep_checkpoints"):
        if train[key] < 1:
            raise ValueError(f"train.{key} must be >= 1, got {train[key]}.")
    if train.eval_every < 0:
        raise ValueError(f"train.eval_every must be >= 0 (0: never), got {train.eval_every}.")
    if train.eval_batches < 1:
        raise ValueError(
            f"train.eval_batches must be >= 1, got {train.eval_batches}; set train.eval_every=0 "
            "for no held-out loss during training."
        )
    for key, (allowed, text) in _RANGES.items():
        value = train[key]
        if not (math.isfinite(value) and allowed(value)):
            raise ValueError(f"train.{key} must be {text}, got {value}.")
