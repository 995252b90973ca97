"""The experiment config every `experiments/<name>.py` starts from, and variant resolution.

An experiment is a base config plus named `variants`: partial nested overrides of the sections
below. `resolve_variant(config, name)` applies one and fills the task-dependent model sizes, so
train.py and eval.py build identical models from it (train.py saves it as the run's config.json).
"""

import dataclasses

import jax
import ml_collections

from data import default_data_config, make_task
from evaluation.config import check_eval_config, default_eval_config
from model import NAR_MASK_KINDS, ModelConfig
from training.config import (
    CPU_SEQUENTIAL_BF16,
    MASKED_OBJECTIVES,
    check_train_config,
    default_mesh_config,
    default_train_config,
)


def base_config() -> ml_collections.ConfigDict:
    """Defaults for every section, each from its owner; an experiment overrides what it needs."""
    config = ml_collections.ConfigDict()
    config.name = "base"
    config.seeds = (0,)  # Each seed is one run: model init, dropout and CMLM masks.
    # Every ModelConfig field; vocab_size = 0 and max_len = 0 mean "from the task".
    config.model = ml_collections.ConfigDict(dataclasses.asdict(ModelConfig()))
    config.model.vocab_size = 0
    config.model.max_len = 0
    config.data = default_data_config()
    config.train = default_train_config()
    config.mesh = default_mesh_config()
    config.eval = default_eval_config()
    config.variants = ml_collections.ConfigDict()
    return config


def with_defaults(saved: dict) -> tuple[ml_collections.ConfigDict, list[str]]:
    """A saved config (config.json or experiment.json) over today's defaults.

    Keys added since the run was trained get their defaults; saved keys that no longer exist are
    dropped and returned by name (dotted), so the caller can say so. `variants` is kept as saved.
    """
    config = base_config()
    dropped = _merge(config, saved, "")
    if "variants" in saved:
        config.variants = ml_collections.ConfigDict(saved["variants"] or {})
    for key in ("seed", "variant"):  # What a run's config.json adds to the experiment's.
        if key in saved:
            config[key] = saved[key]
    return config, dropped


def _merge(section: ml_collections.ConfigDict, saved: dict, where: str) -> list[str]:
    dropped = []
    for key, value in saved.items():
        if key in ("variants", "seed", "variant") and not where:
            continue
        if key not in section:
            dropped.append(f"{where}{key}")
        elif isinstance(section[key], ml_collections.ConfigDict):
            if isinstance(value, dict) and len(section[key]):
                dropped += _merge(section[key], value, f"{where}{key}.")
            elif isinstance(value, dict):  # An open section (e.g. eval.speed.model): as saved.
                section[key] = ml_collections.ConfigDict(value)
            else:
                dropped.append(f"{where}{key}")
        else:
            # JSON turned tuples into lists; ConfigDict keeps a field's type, so turn them back.
            section[key] = tuple(value) if isinstance(value, list) else value
    return dropped


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
    check_config(resolved, task)
    resolved.lock()
    return resolved


def model_config(resolved: ml_collections.ConfigDict) -> ModelConfig:
    """The typed ModelConfig of a resolved config."""
    return ModelConfig.from_dict(resolved.model.to_dict())


def check_config(resolved: ml_collections.ConfigDict, task) -> None:
    """Raises a ValueError for settings that cannot train, before any work is done: each
    section's own checks, then the model against the task."""
    check_train_config(resolved.train)
    check_eval_config(resolved.eval)
    model = resolved.model
    objective = resolved.train.objective
    if objective in MASKED_OBJECTIVES and model.attention_mask_kind not in NAR_MASK_KINDS:
        raise ValueError(
            f"train.objective={objective!r} predicts masked tokens from both sides, so it needs "
            f"model.attention_mask_kind in {NAR_MASK_KINDS}, not {model.attention_mask_kind!r}."
        )
    if objective == "sequential" and model.get("architecture") == "encoder_decoder":
        raise ValueError(
            "train.objective='sequential' feeds one token at a time from BOS, but an "
            "encoder_decoder must encode the whole source first; use teacher_forcing."
        )
    if not resolved.seeds:
        raise ValueError("config.seeds is empty; give at least one seed.")
    model_config(resolved)  # Validates the model section.
    on_cpu = jax.default_backend() == "cpu"
    if resolved.train.objective == "sequential" and model.dtype != "float32" and on_cpu:
        raise ValueError(
            f"train.objective='sequential' with model.dtype={model.dtype!r}: "
            f"{CPU_SEQUENTIAL_BF16}; use model.dtype='float32' on CPU."
        )
    if model.max_len < task.seq_len:
        raise ValueError(
            f"model.max_len={model.max_len} is shorter than the task's sequences "
            f"(data.seq_len is {task.seq_len} for data.task={task.name!r}); set model.max_len=0 "
            f"to take it from the task, or >= {task.seq_len}."
        )
    if model.vocab_size < task.vocab_size:
        raise ValueError(
            f"model.vocab_size={model.vocab_size} cannot hold the task's tokens: "
            f"its {task.num_symbols} symbols plus the special ids need {task.vocab_size}; "
            "set model.vocab_size=0 to take it from the task, or larger."
        )


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
