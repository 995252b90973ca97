"""Evaluates every trained variant x seed of a run folder and aggregates the seeds.

`evaluate_model` measures one decoder; `aggregate` turns per-seed scalars into
{mean, sem, n_seeds, per_seed, per_seed_sem}; `evaluate_workdir` walks runs/<name>/.
"""

import dataclasses
import json
import os
import time
from collections.abc import Callable

import ml_collections
import numpy as np

import data
from evaluation import leakage, quality, speed
from model import Decoder

Log = Callable[[str], None]


def evaluate_model(
    model: Decoder, config: ml_collections.ConfigDict, log: Log = print
) -> tuple[dict[str, tuple[float, float | None]], dict, dict]:
    """One decoder's metrics: (scalars name -> (value, sem over examples or None), samples,
    pictures {dependency_map, attention_LxTxT, labels})."""
    ev, task = config.eval, data.make_task(config.data)
    scalars: dict[str, tuple[float, float | None]] = {}
    leak_batch = task.batch(0, ev.leakage_examples, split="eval")

    log("    leakage: perturbation")
    scalars["perturbation_leakage"] = (
        leakage.perturbation_leakage(model, leak_batch, ev.perturbation_positions),
        None,
    )
    log("    leakage: dependency map (jacobian)")
    maps, share = leakage.dependency_maps(
        model, leak_batch, ev.dependency_examples, ev.dependency_max_len
    )
    scalars["dependency_future_share"] = (share, None)
    length = maps[0].shape[0]
    prefix_length = int(leak_batch["prefix_lengths"][0])
    pictures = {
        "dependency_map": maps[0],
        "attention_LxTxT": leakage.attention_maps(
            model, leak_batch["inputs"][0, :length], length, prefix_length
        ).mean(axis=1),
        "labels": [
            quality.render_tokens([i], task.num_symbols) for i in leak_batch["inputs"][0, :length]
        ],
        "prefix_length": prefix_length,
    }
    samples: dict[str, list[str]] = {}
    if config.train.objective == "masked":
        return scalars, samples, pictures  # A CMLM model is no next-token predictor: see "nar".

    log("    loss: teacher-forced and honest")
    losses = quality.losses(model, task, ev.num_examples, ev.batch_size)
    for name, values in losses.items():
        scalars[f"loss_{name}"] = quality.mean_sem(values)
    scalars["leak_gap"] = quality.mean_sem(losses["honest"] - losses["teacher_forced"])
    log("    loss: random-token floor")
    floor = quality.random_floor(model, config.data, ev.random_floor_examples, ev.batch_size)
    scalars["random_loss"] = (floor["loss"], floor["loss_sem"])
    scalars["random_floor"] = (floor["floor"], None)
    if int(leak_batch["prefix_lengths"].max()) > 1:  # Generation needs a prompt (not plain text).
        log("    quality: greedy generation")
        generations = quality.generation_quality(
            model, task, ev.num_examples, ev.batch_size, ev.num_samples
        )
        for decoder, result in generations.items():
            scalars[f"exact_match/{decoder}"] = quality.mean_sem(result["exact_match"])
            scalars[f"token_accuracy/{decoder}"] = quality.mean_sem(result["token_accuracy"])
            samples[decoder] = result["samples"]
    return scalars, samples, pictures


def aggregate(per_seed: list[dict[str, tuple[float, float | None]]]) -> dict[str, dict]:
    """name -> {mean, sem (over seeds; None for one seed), n_seeds, per_seed, per_seed_sem}."""
    out = {}
    for name in per_seed[0]:
        values = [scalars[name][0] for scalars in per_seed if name in scalars]
        sems = [scalars[name][1] for scalars in per_seed if name in scalars]
        mean, sem = quality.mean_sem(values)
        out[name] = {
            "mean": mean,
            "sem": sem if len(values) > 1 else None,
            "n_seeds": len(values),
            "per_seed": values,
            "per_seed_sem": sems,
        }
    return out


def read_metrics(run_dir: str) -> dict[str, list]:
    """Loss curves and logged training speed from metrics.jsonl ({} when absent)."""
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    curves = {
        split: [[r["step"], r["loss"]] for r in rows if r.get("split") == split and "loss" in r]
        for split in ("train", "eval")
    }
    speeds = [
        r["tokens_per_s"]
        for r in rows
        if r.get("split") == "train" and isinstance(r.get("tokens_per_s"), int | float)
    ]
    # The first log interval includes compilation; the median of the rest is the steady state.
    curves["tokens_per_s"] = float(np.median(speeds[1:] or speeds)) if speeds else None
    return curves


def seed_dirs(variant_dir: str) -> list[tuple[int, str]]:
    """(seed, path) of each trained seed folder (one holding a checkpoint), by seed."""
    found = []
    for entry in sorted(os.listdir(variant_dir)):
        path = os.path.join(variant_dir, entry)
        if entry.startswith("seed_") and os.path.isdir(os.path.join(path, "checkpoints")):
            found.append((int(entry.removeprefix("seed_")), path))
    return sorted(found)


def variant_dirs(workdir: str) -> list[tuple[str, str]]:
    """(variant name, path) in the experiment's order, then any other trained folders."""
    order = []
    experiment_file = os.path.join(workdir, "experiment.json")
    if os.path.exists(experiment_file):
        with open(experiment_file) as f:
            order = list(json.load(f).get("variants", {}))
    present = [
        entry
        for entry in sorted(os.listdir(workdir))
        if os.path.isdir(os.path.join(workdir, entry)) and seed_dirs(os.path.join(workdir, entry))
    ]
    names = [n for n in order if n in present] + [n for n in present if n not in order]
    return [(name, os.path.join(workdir, name)) for name in names]


def evaluate_variant(name: str, path: str, log: Log = print) -> tuple[dict, dict]:
    """The results.json record of one variant, and its pictures (of the first seed)."""
    from training.checkpoints import load_params  # Imported here: tests evaluate bare models.

    per_seed, steps, curves, record, pictures = [], [], {}, {}, {}
    seeds = seed_dirs(path)
    for seed, run_dir in seeds:
        start = time.perf_counter()
        log(f"[{name} seed {seed}] loading {run_dir}")
        model, _, config, step = load_params(run_dir)
        config = with_eval_defaults(config)
        scalars, samples, seed_pictures = evaluate_model(model, config, log)
        per_seed.append(scalars)
        steps.append(step)
        curves[str(seed)] = read_metrics(run_dir)
        if not record:
            record = {"samples": samples, "config": config.to_dict()}
            pictures = seed_pictures
            if config.train.objective == "masked":
                record["nar"] = _evaluate_nar(model, config, run_dir, log)
        log(f"[{name} seed {seed}] done in {time.perf_counter() - start:.1f} s")
    logged = [c["tokens_per_s"] for c in curves.values() if c.get("tokens_per_s")]
    config = record["config"]
    record.update(
        name=name,
        task=config["data"]["task"],
        mask_kind=config["model"]["attention_mask_kind"],
        objective=config["train"]["objective"],
        seeds=[seed for seed, _ in seeds],
        steps=steps,
        num_params=_num_params(config),
        metrics=aggregate(per_seed),
        curves=curves,
        train_tokens_per_s=float(np.mean(logged)) if logged else None,
    )
    return record, pictures


def _evaluate_nar(model: Decoder, config: ml_collections.ConfigDict, run_dir: str, log: Log):
    """Mask-predict against the AR baseline run (`eval.nar.ar_variant`) when it was trained."""
    from evaluation import nar
    from training.checkpoints import load_params

    baseline_dir = nar.ar_baseline_run_dir(run_dir, config)
    ar_model = load_params(baseline_dir)[0] if baseline_dir else None
    log(f"    non-AR: mask-predict vs AR (baseline: {baseline_dir or 'none'})")
    return nar.evaluate_nar(model, data.make_task(config.data), config, ar_model=ar_model)


def with_eval_defaults(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A run's config whose `eval` holds every default key (runs trained before a key existed)."""
    from evaluation.config import default_eval_config

    config = ml_collections.ConfigDict(config.to_dict())
    eval_config = default_eval_config()
    if "eval" in config:
        # JSON turned tuples into lists; ConfigDict keeps a field's type, so convert them back.
        saved = config.eval.to_dict()
        eval_config.update({k: tuple(v) if isinstance(v, list) else v for k, v in saved.items()})
    config.eval = eval_config
    return config


def _num_params(config: dict) -> int:
    from model import ModelConfig

    return ModelConfig.from_dict(config["model"]).num_params()


def _tuples(tree):
    if isinstance(tree, dict):
        return {key: _tuples(value) for key, value in tree.items()}
    return tuple(tree) if isinstance(tree, list) else tree


def speed_section(records: list[dict], eval_config, log: Log = print) -> dict:
    """Sampling speed (cache vs no cache) and training speed per objective, for one variant."""
    from model import ModelConfig

    wanted = list(eval_config.speed_variants) or [r["name"] for r in records]
    timed = [r for r in records if r["name"] in wanted and r["objective"] != "masked"]
    if not timed:
        return {}
    record = timed[0]
    cfg = ModelConfig.from_dict({**record["config"]["model"], **eval_config.speed_model})
    log(f"[speed] sampling, {record['name']} shape ({cfg.num_layers} layers, d={cfg.d_model})")
    sampling = speed.sampling_speed(
        cfg,
        tuple(eval_config.speed_lengths),
        no_cache_max_length=eval_config.speed_no_cache_max_length,
        prompt_len=eval_config.speed_prompt_len,
        batch_size=eval_config.speed_batch_size,
        throughput_length=eval_config.speed_throughput_length,
        repeats=eval_config.speed_repeats,
        log=log,
    )
    training = []
    try:
        training = speed.training_speed(
            cfg,
            objectives=("teacher_forcing", "sequential"),
            seq_len=eval_config.train_speed_seq_len,
            batch_size=eval_config.train_speed_batch_size,
            steps=eval_config.train_speed_steps,
            log=log,
        )
    except ImportError as error:
        log(f"[speed] training speed skipped: {error}")
    return {
        "variant": record["name"],
        "model": dataclasses.asdict(cfg),
        "sampling": sampling,
        "training": training,
        "note": "Random weights of the variant's shape; median of "
        f"{eval_config.speed_repeats} runs after a compiling one.",
    }


def experiment_eval_config(workdir: str) -> ml_collections.ConfigDict:
    """The experiment's `eval` section (experiment.json) over the defaults, so new keys exist."""
    from evaluation.config import default_eval_config

    config = default_eval_config()
    path = os.path.join(workdir, "experiment.json")
    if os.path.exists(path):
        with open(path) as f:
            saved = json.load(f).get("eval", {})
        config.update({k: v for k, v in _tuples(saved).items() if k in config})
    return config


def evaluate_workdir(
    workdir: str,
    eval_config: ml_collections.ConfigDict | None = None,
    variants: list[str] | None = None,
    with_speed: bool = True,
    log: Log = print,
) -> tuple[dict, dict]:
    """results.json's content (without environment fields) and the pictures, for runs/<name>/."""
    eval_config = eval_config or experiment_eval_config(workdir)
    found = variant_dirs(workdir)
    if variants:
        found = [(n, p) for n, p in found if n in variants]
    if not found:
        raise FileNotFoundError(
            f"No trained variant (<variant>/seed_*/checkpoints) under {workdir}"
            + (f" among {variants}" if variants else "")
            + "; run train.py with this --workdir first."
        )
    records, pictures = [], {}
    for name, path in found:
        record, pictures[name] = evaluate_variant(name, path, log)
        records.append(record)
    results = {
        "schema_version": 1,
        "experiment": os.path.basename(os.path.abspath(workdir)),
        "workdir": os.path.abspath(workdir),
        "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "eval_config": eval_config.to_dict(),
        "variants": records,
        "speed": speed_section(records, eval_config, log) if with_speed else {},
    }
    return results, pictures
