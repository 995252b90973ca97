"""The `eval` section of every experiment config: its defaults live here and nowhere else."""

import ml_collections

from evaluation import decoders


def default_speed_config() -> ml_collections.ConfigDict:
    """`eval.speed`: decoding and training speed, timed on random weights of one variant's shape.

    Decode and train cost depend on shapes, not on weight values, so each decoder is timed on a
    fresh model of the timed variant's shape, with the attention mask the decoder needs.
    """
    config = ml_collections.ConfigDict()
    config.variants = ()  # Variant names whose shape is timed (the first found); () = the first.
    # Decoder names (evaluation/decoders.py) to time, each on a model with the mask it needs.
    config.decoders = ("AR (cache)", "AR (no cache, honest)")
    # ModelConfig fields that replace the timed variant's (e.g. a wider model than the tiny one a
    # demo trains: tiny models on CPU time dispatch overhead more than compute).
    config.model = ml_collections.ConfigDict()
    config.lengths = (64, 128, 256, 512, 1024)  # Batch 1: total tokens per row (prompt + new).
    config.prompt_len = 8
    config.no_cache_max_length = 1024  # The no-cache sampler is O(L^2) per row; cap it.
    config.batch_size = 64  # Large-batch throughput, at `throughput_length`.
    config.throughput_length = 256
    config.repeats = 3  # Timed runs after the compiling one; the median is reported.
    # Training speed (teacher forcing vs sequential), with the training step train.py runs.
    config.train_seq_len = 64
    config.train_batch_size = 32
    config.train_steps = 3
    return config


def default_eval_config() -> ml_collections.ConfigDict:
    """Defaults for `config.eval`; experiments override what they need."""
    config = ml_collections.ConfigDict()
    # Held-out loss (teacher-forced and honest) and generation quality.
    config.num_examples = 256  # Examples from the task's "eval" split.
    config.batch_size = 64
    config.num_samples = 4  # Sample generations shown in the report, per variant and decoder.
    # Decoder names (evaluation/decoders.py) to score; () = every decoder that applies.
    config.decoders = ()
    # Leakage.
    config.leakage_examples = 32  # Rows perturbed; t takes `perturbation_positions` values each.
    config.perturbation_positions = 4
    config.dependency_examples = 4  # Gradient maps averaged for the future share (first drawn).
    config.dependency_max_len = 64  # Longer rows are cut (text), to bound the Jacobian's cost.
    config.random_floor_examples = 256  # Rows of the `random` task for the ln(num_symbols) floor.
    # Non-AR variants: the AR variant (same experiment, same seed) the report compares them with.
    config.nar = ml_collections.ConfigDict({"ar_variant": ""})
    # AR variants: the drafts speculative decoding uses (same experiment, same seed): a smaller AR
    # model, and a CMLM model that proposes the next tokens in one masked pass. "": not scored.
    config.speculative = ml_collections.ConfigDict({"draft_variant": "", "cmlm_variant": ""})
    config.speed = default_speed_config()
    return config


def _at_least(section: ml_collections.ConfigDict, where: str, minimum: int, *keys: str) -> None:
    for key in keys:
        if section[key] < minimum:
            raise ValueError(f"{where}.{key} must be >= {minimum}, got {section[key]}.")


def check_eval_config(config: ml_collections.ConfigDict) -> None:
    """Raises a ValueError naming the first `eval` setting that cannot be evaluated, so a typo
    fails when training starts rather than hours later in eval.py."""
    _at_least(config, "eval", 1, "num_examples", "batch_size", "leakage_examples")
    _at_least(config, "eval", 1, "perturbation_positions", "dependency_examples")
    _at_least(config, "eval", 1, "random_floor_examples")
    _at_least(config, "eval", 0, "num_samples")
    _at_least(config, "eval", 2, "dependency_max_len")
    decoders.lookup(config.decoders)
    speed = config.speed
    decoders.lookup(speed.decoders)
    _at_least(speed, "eval.speed", 1, "prompt_len", "batch_size", "repeats")
    _at_least(speed, "eval.speed", 1, "train_batch_size", "train_steps")
    _at_least(speed, "eval.speed", 4, "train_seq_len")
    too_short = [n for n in (*speed.lengths, speed.throughput_length) if n <= speed.prompt_len]
    if too_short:
        raise ValueError(
            f"eval.speed lengths {too_short} leave no new tokens after "
            f"eval.speed.prompt_len={speed.prompt_len}; each total length must be larger."
        )
