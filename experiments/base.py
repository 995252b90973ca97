"""The experiment config every `experiments/<name>.py` starts from, and variant resolution.

An experiment is a base config plus named `variants`: partial nested overrides of the sections
below. `resolve_variant(config, name)` applies one and fills the task-dependent model sizes, so
train.py and eval.py build identical models from it (train.py saves it as the run's config.json).
"""

import dataclasses

import ml_collections

from data import default_data_config, make_task
from evaluation.config import default_eval_config
from model import NAR_MASK_KINDS, ModelConfig

OBJECTIVES = ("teacher_forcing", "sequential", "masked")


def base_config() -> ml_collections.ConfigDict:
    """Defaults for every section; an experiment overrides what it needs."""
    config = ml_collections.ConfigDict()
    config.name = "base"
    config.seeds = (0,)  # Each seed is one run: model init, dropout and CMLM masks.

    # Every ModelConfig field; vocab_size = 0 and max_len = 0 mean "from the task".
    config.model = ml_collections.ConfigDict(dataclasses.asdict(ModelConfig()))
    config.model.vocab_size = 0
    config.model.max_len = 0

    config.data = default_data_config()

    config.train = ml_collections.ConfigDict()
    config.train.objective = "teacher_forcing"  # One of OBJECTIVES.
    config.train.batch_size = 64  # Global: split over processes and devices.
    config.train.num_steps = 2000
    config.train.learning_rate = 1e-3  # Peak, after linear warmup; then cosine decay.
    config.train.warmup_steps = 100
    config.train.min_learning_rate_ratio = 0.1  # Cosine decays to this fraction of the peak.
    config.train.weight_decay = 0.01  # AdamW; applied to matrices only (not biases, norms).
    config.train.adam_b1 = 0.9
    config.train.adam_b2 = 0.98
    config.train.grad_clip_norm = 1.0  # Global-norm clipping; 0 disables it.
    config.train.log_every = 50
    config.train.eval_every = 500  # Held-out loss every so many steps (and at the end); 0: never.
    config.train.eval_batches = 4
    config.train.checkpoint_every = 500  # Also at the end and on SIGTERM.
    config.train.keep_checkpoints = 2
    config.train.peak_flops_per_device = 0.0  # For MFU; 0: measured once by a matmul benchmark.

    config.eval = default_eval_config()
    config.variants = ml_collections.ConfigDict()
    return config


def variant_names(config: ml_collections.ConfigDict) -> list[str]:
    """The experiment's variant names, in definition order; [""] when it defines none."""
    return list(config.variants.keys()) or [""]


def resolve_variant(config: ml_collections.ConfigDict, name: str) -> ml_collections.ConfigDict:
    """The config of one variant: overrides applied, model sizes filled from the task.

    The result has no `variants` and gains `variant` (the name). An override of a key that the
    base does not have raises, naming it; so does an unknown variant name.
    """
    names = variant_names(config)
    if name not in names:
        raise ValueError(f"Unknown variant {name!r}; {config.name!r} defines {names}.")
    resolved = ml_collections.ConfigDict(config.to_dict())
    del resolved.variants
    if name:
        _override(resolved, config.variants[name].to_dict(), f"variants.{name}")
    task = make_task(resolved.data)
    if resolved.model.vocab_size == 0:
        resolved.model.vocab_size = task.vocab_size
    if resolved.model.max_len == 0:
        resolved.model.max_len = task.seq_len
    resolved.variant = name
    check_config(resolved)
    resolved.lock()
    return resolved


def model_config(resolved: ml_collections.ConfigDict) -> ModelConfig:
    """The typed ModelConfig of a resolved config."""
    return ModelConfig.from_dict(resolved.model.to_dict())


def check_config(resolved: ml_collections.ConfigDict) -> None:
    """Raises a ValueError for settings that cannot train, before any work is done."""
    train = resolved.train
    if train.objective not in OBJECTIVES:
        raise ValueError(f"train.objective={train.objective!r}; expected one of {OBJECTIVES}.")
    if train.objective == "masked" and resolved.model.attention_mask_kind not in NAR_MASK_KINDS:
        raise ValueError(
            "train.objective='masked' (CMLM) predicts masked tokens from both sides, so it needs "
            f"model.attention_mask_kind in {NAR_MASK_KINDS}, not "
            f"{resolved.model.attention_mask_kind!r}."
        )
    if not resolved.seeds:
        raise ValueError("config.seeds is empty; give at least one seed.")
    for key in ("batch_size", "num_steps", "log_every", "checkpoint_every", "keep_checkpoints"):
        if train[key] < 1:
            raise ValueError(f"train.{key} must be >= 1, got {train[key]}.")
    model_config(resolved)  # Validates the model section.


def _override(section: ml_collections.ConfigDict, overrides: dict, where: str) -> None:
    for key, value in overrides.items():
        if key not in section:
            raise KeyError(f"{where}.{key}: no such key in the base config ({sorted(section)}).")
        if isinstance(section[key], ml_collections.ConfigDict):
            if not isinstance(value, dict):
                raise TypeError(f"{where}.{key} is a section; override it with a dict.")
            _override(section[key], value, f"{where}.{key}")
        else:
            section[key] = value
