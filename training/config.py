"""The `train` section of every experiment config: its defaults live here and nowhere else."""

import ml_collections

OBJECTIVES = ("teacher_forcing", "sequential", "masked")


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
    config.log_every = 50
    config.eval_every = 500  # Held-out loss every so many steps (and at the end); 0: never.
    config.eval_batches = 4
    config.checkpoint_every = 500  # Also at the end and on SIGTERM.
    config.keep_checkpoints = 2
    config.peak_flops_per_device = 0.0  # For MFU; 0: measured once by a matmul benchmark.
    return config
