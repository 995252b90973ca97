"""The `eval` section of every experiment config."""

import ml_collections


def default_eval_config() -> ml_collections.ConfigDict:
    """Defaults for `config.eval`; experiments override what they need."""
    config = ml_collections.ConfigDict()
    # Held-out loss (teacher-forced and honest) and greedy-generation quality.
    config.num_examples = 256  # Examples from the task's "eval" split.
    config.batch_size = 64
    config.num_samples = 4  # Sample generations shown in the report, per variant.
    # Leakage.
    config.leakage_examples = 32  # Rows perturbed; t takes `perturbation_positions` values each.
    config.perturbation_positions = 4
    config.dependency_examples = 4  # Gradient maps averaged for the future share (first drawn).
    config.dependency_max_len = 64  # Longer rows are cut (text), to bound the Jacobian's cost.
    config.random_floor_examples = 256  # Rows of the `random` task for the ln(num_symbols) floor.
    # Sampling speed: random weights of each variant's shape (decode cost does not read them).
    config.speed_variants = ()  # Variant names to time (the first is timed); () = every variant.
    # ModelConfig fields that replace the timed variant's (e.g. a wider model than the tiny one
    # a demo trains, since tiny models on CPU time dispatch overhead more than compute).
    config.speed_model = ml_collections.ConfigDict()
    config.speed_lengths = (64, 128, 256, 512, 1024)  # Total tokens per row (prompt + new).
    config.speed_no_cache_max_length = 1024  # The no-cache sampler is O(L^2) per row; cap it.
    config.speed_prompt_len = 8
    config.speed_batch_size = 64  # Large-batch throughput, at `speed_throughput_length`.
    config.speed_throughput_length = 256
    config.speed_repeats = 3  # Timed runs after the compiling one; the median is reported.
    # Training speed, measured with the training step when `training` is importable.
    config.train_speed_seq_len = 64
    config.train_speed_batch_size = 32
    config.train_speed_steps = 3
    return config
