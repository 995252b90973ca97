"""The planner: an experiment config becomes a typed, frozen plan per (variant, seed).

Config flows one way. An experiment file (`experiments/<name>.py`) edits ml_collections
ConfigDicts at the edge of the program: `base_config()` gathers each section's defaults from its
owner, and the experiment adds named `variants` (partial nested overrides). `make_plan(config,
variant, seed)` applies one variant, fills the task-dependent model sizes and returns a `RunPlan`
(sections/) of frozen, self-checking sections; `make_plans` gives every run's. The entry points
(train.py) call it and hand the plans down: training and evaluation import neither this module
nor `experiments/`. A run's config.json is `plan.to_dict()`, and `sections.load_plan` reads one
back over today's defaults.
"""

import dataclasses
import json

import jax
import ml_collections

from data import DataConfig, batching, default_data_config, make_task, token_batches
from evaluation import decoders, references
from model import ModelConfig, architecture_of, check_model
from model.ctc import row_width
from model.diffusion import scores_eos_as_token
from model.masks import kinds_where, mask_kind
from objectives import OBJECTIVES, objective_of
from sections import (
    EvalConfig,
    MeshConfig,
    RunPlan,
    TrainConfig,
    default_eval_config,
    default_mesh_config,
    default_train_config,
    section_from_dict,
)


def base_config() -> ml_collections.ConfigDict:
    """Defaults for every section, each from its owner; an experiment overrides what it needs."""
    config = ml_collections.ConfigDict()
    config.name = "base"
    # Each seed is one run: model init, dropout and CMLM masks. A variant may give its own
    # (`variants.NAME.seeds`): the headline rows of a study take 3 seeds, the others one.
    config.seeds = (0,)
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


def variant_names(config: ml_collections.ConfigDict) -> list[str]:
    """The experiment's variant names, in definition order; [""] when it defines none."""
    return list(config.variants.keys()) or [""]


def make_plan(config: ml_collections.ConfigDict, variant: str, seed: int | None = None) -> RunPlan:
    """The plan of one run: the variant's overrides applied, the model sizes filled from the
    task, every section checked, then the sections against each other and the task, and the
    variants its eval section names (which must exist; a judge must be a next-token model).

    `seed` defaults to the experiment's first. An override of a key that the base does not have
    raises, naming it; so does an unknown variant name.
    """
    names = variant_names(config)
    if variant not in names:
        raise ValueError(f"Unknown variant {variant!r}; {config.name!r} defines {names}.")
    resolved = resolve(config, variant)
    if not resolved.seeds:
        raise ValueError("config.seeds is empty; give at least one seed.")
    data = DataConfig.from_dict(resolved.data.to_dict())
    task = make_task(data)
    model = resolved.model.to_dict()
    model["vocab_size"] = model["vocab_size"] or task.vocab_size
    reads_whole = objective_of(resolved.train.objective).reads_whole_sequence
    model["max_len"] = model["max_len"] or task.seq_len + reads_whole
    plan = RunPlan(
        name=resolved.name,
        variant=variant,
        seed=resolved.seeds[0] if seed is None else seed,
        seeds=tuple(resolved.seeds),
        model=ModelConfig.from_dict(model),
        data=data,
        train=section_from_dict(TrainConfig, resolved.train, "train"),
        mesh=section_from_dict(MeshConfig, resolved.mesh, "mesh"),
        eval=EvalConfig.from_dict(resolved.eval),
    )
    check_plan(plan, task)
    references.check_names(plan.eval, names)
    _check_init_from(config, variant, plan.train.init_from)
    _check_judge(config, plan.eval)
    return plan


def _check_init_from(config: ml_collections.ConfigDict, variant: str, source: str) -> None:
    """A warm start (train.init_from) names another variant that trains every seed this one
    does: the trained params of its run with the same seed start this run."""
    if not source:
        return
    names = variant_names(config)
    if source not in names or source == variant:
        raise ValueError(
            f"train.init_from={source!r} must name another variant of {config.name!r} "
            f"({[n for n in names if n != variant]}): its trained params start this run"
        )
    missing = sorted(set(variant_seeds(config, variant)) - set(variant_seeds(config, source)))
    if missing:
        raise ValueError(
            f"train.init_from={source!r} trains no seed {missing}, which {variant!r} trains: "
            "each seed starts from the source's run with the same seed"
        )


def resolve(config: ml_collections.ConfigDict, variant: str) -> ml_collections.ConfigDict:
    """The experiment's sections with `variant`'s overrides applied (no `variants`): its recipe
    as written, before the task fills the model sizes."""
    resolved = ml_collections.ConfigDict(config.to_dict())
    del resolved.variants
    if variant:
        _override(resolved, config.variants[variant].to_dict(), f"variants.{variant}")
    return resolved


def _check_judge(config: ml_collections.ConfigDict, settings: EvalConfig) -> None:
    """The judge of generative NLL that `settings` name must be a next-token model with an exact
    cache: read from its variant's recipe, so a wrong judge fails before anything trains."""
    judge = settings.diffusion.ar_variant
    if judge:
        recipe = resolve(config, judge)
        references.check_judge_recipe(
            judge,
            objective_of(recipe.train.objective),
            mask_kind(recipe.model.attention_mask_kind),
        )


def check_plan(plan: RunPlan, task) -> None:
    """Raises a ValueError for sections that cannot train together, before any work is done."""
    model, objective = plan.model, objective_of(plan.train.objective)
    if not objective.trains_mask(model.mask):
        trainable = kinds_where(objective.trains_mask)
        raise ValueError(
            f"train.objective={objective.id!r}: {objective.mask_reason}, so it needs "
            f"model.attention_mask_kind to be one of {trainable}, not "
            f"{model.attention_mask_kind!r}."
        )
    if model.block_size != 1 and not model.mask.uses_block_size:
        # It would be recorded in config.json and mean nothing.
        raise ValueError(
            f"model.block_size={model.block_size} means something only under a mask kind with "
            f"blocks ({kinds_where(lambda kind: kind.uses_block_size)}); "
            f"model.attention_mask_kind is {model.attention_mask_kind!r}."
        )
    if model.length_head and not objective.trains_length_head:
        trainers = tuple(o.id for o in OBJECTIVES.values() if o.trains_length_head)
        raise ValueError(
            f"model.length_head=True is trained only by the objectives {trainers}; with "
            f"train.objective={objective.id!r} it would stay untrained, so set "
            "model.length_head=False or one of those objectives."
        )
    if model.length_head and objective.reads_whole_sequence and scores_eos_as_token(model):
        raise ValueError(
            f"model.length_head=True with attention_mask_kind={model.attention_mask_kind!r}: "
            f"a block model learns its EOS as a token and ends at the first block holding one "
            "(BD3-LM), so no length head is asked; set model.length_head=False."
        )
    check_model(model, objective)
    decoders.lookup(plan.eval.decoders)
    decoders.lookup(plan.eval.speed.decoders)
    on_cpu = jax.default_backend() == "cpu"
    if objective.cpu_low_precision and model.dtype != "float32" and on_cpu:
        raise ValueError(
            f"train.objective={objective.id!r} with model.dtype={model.dtype!r}: "
            f"{objective.cpu_low_precision}; use model.dtype='float32' on CPU."
        )
    if objective.canvas_ratio:
        _check_canvas(objective, model, task)
    if plan.data.batch_tokens:
        token_batches.check_devices(jax.device_count())
    if architecture_of(model).trains_split:
        # Its one-line error: a loss on the prompt. Eval rows take the task's loss rule too, and
        # reading them leaves a token-batched train split untouched (tokenised on first use).
        batching.split_seq2seq(task.batch(0, 8, split="eval"))
    # An objective that reads each row whole (diffusion) needs a position for its last token.
    needed = task.seq_len + objective.reads_whole_sequence
    if model.max_len < needed:
        whole = f", one more for train.objective={objective.id!r}" * objective.reads_whole_sequence
        raise ValueError(
            f"model.max_len={model.max_len} is shorter than the task's sequences "
            f"(data.seq_len is {task.seq_len} for data.task={task.name!r}{whole}); set "
            f"model.max_len=0 to take it from the task, or >= {needed}."
        )
    if model.vocab_size < task.vocab_size:
        raise ValueError(
            f"model.vocab_size={model.vocab_size} cannot hold the task's tokens: "
            f"its {task.num_symbols} symbols plus the special ids need {task.vocab_size}; "
            "set model.vocab_size=0 to take it from the task, or larger."
        )


def _check_canvas(objective, model: ModelConfig, task) -> None:
    """An objective that writes `canvas_ratio` x S slots after each `BOS source SEP` prompt (CTC)
    needs a source, and room for the canvas: checked on the first training batch."""
    batch = task.batch(0, 64)
    prefix_B = batch["prefix_lengths"]
    if prefix_B.min() < 3:
        raise ValueError(
            f"train.objective={objective.id!r} writes its output on a canvas copied from the "
            f"source, but data.task={task.name!r} has rows without one."
        )
    needed = row_width(int(prefix_B.max()), objective.canvas_ratio)
    if model.max_len < needed:
        raise ValueError(
            f"train.objective={objective.id!r} writes {objective.canvas_ratio} canvas slots "
            f"per source token after the prompt: the first training batch needs "
            f"model.max_len >= {needed}, got {model.max_len}."
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


def make_plans(
    config: ml_collections.ConfigDict, variant: str | None = None, seed: int | None = None
) -> list[RunPlan]:
    """The plan of every run of `config` (each variant x its seeds), or of one variant's seeds,
    or of one seed (a seed no planned variant trains is refused, naming theirs)."""
    names = variant_names(config) if variant is None else [variant]
    runs = [(name, s) for name in names for s in variant_seeds(config, name)]
    if seed is not None:
        if not any(s == seed for _, s in runs):
            trained = {name: variant_seeds(config, name) for name in names}
            raise ValueError(f"--seed={seed}: no planned variant trains it (seeds: {trained})")
        runs = [(name, s) for name, s in runs if s == seed]
    return [make_plan(config, name, s) for name, s in runs]


def variant_seeds(config: ml_collections.ConfigDict, variant: str) -> tuple[int, ...]:
    """The seeds a variant trains: its own `seeds`, else the experiment's (an unknown variant's
    are the experiment's: `make_plan` names it in its one-line refusal)."""
    own = config.variants[variant].get("seeds") if variant in config.variants else None
    return tuple(config.seeds if own is None else own)


def overridden_flags(
    config: ml_collections.ConfigDict, variant: str, flags: dict
) -> list[tuple[str, object]]:
    """(dotted key, the variant's value) of each command-line override (`--config.train.
    num_steps=5`: flags holds {"train.num_steps": 5}) that `variant`'s own settings replace."""
    if not variant:
        return []
    own = _flat(config.variants[variant].to_dict())
    return [(key, own[key]) for key in flags if key in own and own[key] != flags[key]]


def _flat(values: dict, where: str = "") -> dict:
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat |= _flat(value, f"{where}{key}.")
        else:
            flat[f"{where}{key}"] = value
    return flat


def experiment_json(config: ml_collections.ConfigDict) -> dict:
    """The experiment as experiment.json holds it: its sections and variants in the order the
    file defines them (ConfigDict.to_dict sorts keys; the report lists variants in file order)."""
    return json.loads(config.to_json())
