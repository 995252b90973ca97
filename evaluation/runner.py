"""Evaluates every trained variant x seed of a run folder: the evaluators table, and results.json.

An evaluator is a function `(run, eval settings, log) -> Measurement` (evaluation/run.py). Those of
scope "run" measure every (variant, seed) with that run's own `config.eval`; those of scope
"timed" run once per experiment on the first seed of the timed variant (`eval.speed.variants`),
with the experiment's `eval` section. Seeds are aggregated as {mean, sem, n_seeds, per_seed,
per_seed_sem}, BLEU and chrF like every other metric; the signatures that a "run" evaluator
gives (sacrebleu's) go into the variant's record. The report (evaluation/report/) renders the
results dict this returns.

Each evaluator describes what it measures (report/schema.py): a MetricSpec per metric (its label,
format, table and verdict rules) and a TableSpec per table of timed rows. The runner stores those
descriptions in results.json, and the report builds its tables, verdicts and methods from them.

Example, a new evaluator, which then has a column in the summary and a verdict per variant:

    from evaluation import runner
    from evaluation.report.schema import MetricSpec
    from evaluation.run import Measurement

    def param_norm(run, settings, log):
        norm = sum(float((x ** 2).sum()) for x in jax.tree.leaves(nnx.state(run.model))) ** 0.5
        return Measurement(metrics={"param_norm": (norm, None)})

    runner.register_evaluator("param_norm", runner.Evaluator(param_norm, "run", metrics=(
        MetricSpec("param_norm", "‖θ‖", verdicts=(
            {"rule": "state", "text": "{variant}: parameter norm {value}."},)),)))

Its `metrics` become rows of the variant's metrics (mean ± sem over seeds); `tables` and `info` of
a "timed" evaluator go into `results["speed"]`.
"""

import dataclasses
import json
import os
import time
from collections.abc import Callable

import numpy as np

from evaluation import (
    checkpoint_history,
    decoders,
    latency,
    leakage,
    learning_curve,
    likelihood,
    quality,
    references,
    speed,
)
from evaluation.report.records import decoders_of
from evaluation.report.schema import SCHEMA_VERSION, MetricSpec, TableSpec
from evaluation.run import LoadedRun, Measurement, load_run
from evaluation.stats import mean_sem
from model import architecture_of, num_params
from objectives import objective_of
from sections import EvalConfig, experiment_eval
from training import checkpoints, run_folder

Log = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class Evaluator:
    fn: Callable[[LoadedRun, EvalConfig, Log], Measurement]
    scope: str  # "run": every (variant, seed); "timed": once, on the timed variant.
    metrics: tuple[MetricSpec, ...] = ()  # What its Measurement.metrics hold.
    tables: tuple[TableSpec, ...] = ()  # What its Measurement.tables hold (timed rows).


EVALUATORS: dict[str, Evaluator] = {
    "leakage": Evaluator(leakage.evaluate, "run", metrics=leakage.METRICS),
    "loss": Evaluator(quality.evaluate_loss, "run", metrics=quality.LOSS_METRICS),
    "quality": Evaluator(quality.evaluate_generation, "run", metrics=quality.GENERATION_METRICS),
    "latency": Evaluator(latency.evaluate, "run", metrics=latency.METRICS),
    "likelihood": Evaluator(likelihood.evaluate, "run", metrics=likelihood.METRICS),
    "learning_curve": Evaluator(learning_curve.evaluate, "run", metrics=learning_curve.METRICS),
    "speed": Evaluator(speed.evaluate_decoding_speed, "timed", tables=(speed.SAMPLING_TABLE,)),
    "training_speed": Evaluator(
        speed.evaluate_training_speed, "timed", tables=(speed.TRAINING_TABLE,)
    ),
}


def register_evaluator(name: str, evaluator: Evaluator) -> Evaluator:
    """Adds an evaluator under `name` (eval.py's --evaluators); a later one with the same name
    replaces the earlier one."""
    if evaluator.scope not in ("run", "timed"):
        raise ValueError(
            f"Evaluator {name!r}: scope must be 'run' or 'timed', not {evaluator.scope!r}"
        )
    EVALUATORS[name] = evaluator
    return evaluator


def aggregate(per_seed: list[dict[str, tuple[float, float | None]]]) -> dict[str, dict]:
    """name -> {mean, sem (over seeds; None for one seed), n_seeds, per_seed, per_seed_sem}."""
    names = list(dict.fromkeys(name for scalars in per_seed for name in scalars))
    out = {}
    for name in names:
        values = [scalars[name][0] for scalars in per_seed if name in scalars]
        sems = [scalars[name][1] for scalars in per_seed if name in scalars]
        mean, sem = mean_sem(values)
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
    path = run_folder.metrics_path(run_dir)
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


def _variant_record(name: str, runs: list[LoadedRun]) -> dict:
    """The fields of a variant's record that come from its config and its runs."""
    config = runs[0].config
    cfg = runs[0].model.cfg
    curves = {str(run.seed): read_metrics(run.run_dir) for run in runs}
    logged = [c["tokens_per_s"] for c in curves.values() if c.get("tokens_per_s")]
    # What each seed's training cost up to its evaluated step (seconds and FLOPs as logged).
    costs = [checkpoint_history.training_cost(run.run_dir, [run.step]) for run in runs]
    objective = objective_of(config.train.objective)
    non_ar = not objective.next_token  # CMLM and diffusion.
    baseline = config.eval.nar.ar_variant if non_ar else ""
    return {
        "name": name,
        "task": runs[0].task.label,
        "mask_kind": cfg.attention_mask_kind,
        "mask_label": architecture_of(cfg).mask_label(cfg.attention_mask_kind),
        "architecture": cfg.architecture,
        "objective": config.train.objective,
        "model_kind": objective.model_kind,
        "exact_mask": cfg.mask.exact_cache,
        "block_size": cfg.mask.block_size(cfg),
        "non_ar": non_ar,
        "seeds": [run.seed for run in runs],
        "steps": [run.step for run in runs],
        "num_steps": config.train.num_steps,
        "num_params": num_params(cfg),
        "config": config.to_dict(),
        "baseline": baseline or None,
        "curves": curves,
        "train_tokens_per_s": float(np.mean(logged)) if logged else None,
        "train_cost": {
            key: _mean_or_none([cost[i][0] for cost in costs])
            for i, key in enumerate(("seconds", "flops"))
        },
    }


def _mean_or_none(values: list) -> float | None:
    """The mean of `values`, or None when any is unknown (a log that does not reach it)."""
    return None if not values or any(v is None for v in values) else float(np.mean(values))


def evaluate_variant(
    name: str,
    path: str,
    evaluators: list[str],
    timed_settings: EvalConfig | None,
    log: Log = print,
    eval_overrides: dict | None = None,
    known: list[str] | None = None,
) -> tuple[dict, dict]:
    """The results.json record of one variant, and the timed evaluators' output when
    `timed_settings` is given (this is the timed variant): results.json's `speed` section.
    `known`: the experiment's variants, which the settings naming a variant must be among."""
    per_seed, runs, timed = [], [], {}
    record = {"samples": {}, "pictures": None, "signatures": {}, "skipped": {}, "sentences": {}}
    for seed, run_dir in run_folder.seed_runs(path):
        start = time.perf_counter()
        log(f"[{name} seed {seed}] loading {run_dir}")
        run, dropped = load_run(name, seed, run_dir)
        if run.config.train.ema_decay:
            log(f"[{name} seed {seed}] evaluating its {checkpoints.evaluated_weights(run.config)}")
        run.config = run.config.with_eval(eval_overrides or {})
        if known:
            references.check_names(run.config.eval, known)
        references.check_judge(run.config.eval, run_dir)
        if dropped:
            log(f"[{name} seed {seed}] config keys this version no longer has, ignored: {dropped}")
        scalars = {}
        for evaluator_name, evaluator in ((e, EVALUATORS[e]) for e in evaluators):
            if evaluator.scope == "run":
                found = evaluator.fn(run, run.config.eval, log)
                if found.skipped:
                    log(f"[{name} seed {seed}] {evaluator_name}: not measured: {found.skipped}")
                    record["skipped"][evaluator_name] = found.skipped
                scalars.update(found.metrics)
                record["signatures"].update(found.signatures)  # The same for every seed.
                for metric, rows in found.sentences.items():  # One list per seed, in order.
                    record["sentences"].setdefault(metric, []).append(rows)
                if not runs:  # Samples and pictures of the first seed.
                    record["samples"].update(found.samples)
                    if found.pictures:  # Each adds its own: leakage's maps, the curve.
                        record["pictures"] = {**(record["pictures"] or {}), **found.pictures}
            elif timed_settings is not None and not runs:
                found = evaluator.fn(run, timed_settings, log)
                timed.update(found.info)
                timed.update(found.tables)
        per_seed.append(scalars)
        runs.append(run)
        log(f"[{name} seed {seed}] done in {time.perf_counter() - start:.1f} s")
    record.update(_variant_record(name, runs))
    record["metrics"] = aggregate(per_seed)
    return record, timed


def _say_unscored_decoders(eval_config: EvalConfig, records: list[dict], log: Log) -> None:
    """One line for each decoder `eval.decoders` names that applies to no evaluated variant."""
    scored = {decoder for record in records for decoder in decoders_of(record)}
    kinds = sorted({f"{r['mask_kind']} / {r['objective']}" for r in records})
    for spec in decoders.lookup(eval_config.decoders):
        if spec.id not in scored:
            log(
                f"{spec.id}: eval.decoders names it, but it applies to none of the evaluated "
                f"variants (mask / objective: {', '.join(kinds)}); not scored"
            )


def _timed_variant(names: list[str], eval_config: EvalConfig) -> str | None:
    wanted = [n for n in eval_config.speed.variants if n in names]
    return (wanted or names or [None])[0]


def _decoders_used(records: list[dict], timed: dict) -> list[decoders.DecoderSpec]:
    """Every decoder scored or timed, in the order first met."""
    ids = [decoder for r in records for decoder in decoders_of(r)]
    ids += [row["decoder"] for row in timed.get("sampling", [])]
    return decoders.lookup(dict.fromkeys(ids))


def descriptions(evaluators: list[str], used: list[decoders.DecoderSpec]) -> dict:
    """results.json's `metrics_info` and `tables_info`: what the evaluators run and the decoders
    used say of their metrics and tables, in column order (report/schema.py)."""
    metrics = [spec for name in evaluators for spec in EVALUATORS[name].metrics]
    metrics += [spec for decoder in used for spec in decoder.metrics]
    unique = {spec.name: spec for spec in reversed(metrics)}  # The first description wins.
    return {
        "metrics_info": [unique[name].to_json() for name in dict.fromkeys(s.name for s in metrics)],
        "tables_info": [t.to_json() for name in evaluators for t in EVALUATORS[name].tables],
    }


def evaluate_workdir(
    workdir: str,
    *,
    variants: list[str] | None = None,
    evaluators: list[str] | None = None,
    eval_overrides: dict | None = None,
    log: Log = print,
) -> dict:
    """results.json's content, without the environment fields, for runs/<name>/.

    `eval_overrides` (flat dotted keys of the eval section, e.g. {"num_examples": 32}) replace
    what the experiment and each run were trained with.
    """
    evaluators = list(evaluators or EVALUATORS)
    unknown = [e for e in evaluators if e not in EVALUATORS]
    if unknown:
        raise ValueError(f"Unknown evaluators {unknown}; choose from {list(EVALUATORS)}.")
    eval_config = experiment_eval(run_folder.read_experiment(workdir)).with_overrides(
        eval_overrides or {}
    )
    decoders.lookup(eval_config.decoders)
    decoders.lookup(eval_config.speed.decoders)
    known = run_folder.defined_variants(workdir)
    if known:
        references.check_names(eval_config, known)
    found = run_folder.trained_variants(workdir)
    if variants:
        found = [(n, p) for n, p in found if n in variants]
    if not found:
        raise FileNotFoundError(
            f"No trained variant (<variant>/seed_*/checkpoints) under {workdir}"
            + (f" among {variants}" if variants else "")
            + "; run train.py with this --workdir first."
        )
    timed_variant = _timed_variant([n for n, _ in found], eval_config)
    records, timed = [], {}
    for name, path in found:
        settings = eval_config if name == timed_variant else None
        record, variant_timed = evaluate_variant(
            name, path, evaluators, settings, log, eval_overrides, known
        )
        records.append(record)
        timed.update(variant_timed)
    _say_unscored_decoders(eval_config, records, log)
    used = _decoders_used(records, timed)
    wanted = variants or run_folder.defined_variants(workdir)
    trained = {name for name, _ in run_folder.trained_variants(workdir)}
    return {
        "schema_version": SCHEMA_VERSION,
        "experiment": os.path.basename(os.path.abspath(workdir)),
        "workdir": os.path.abspath(workdir),
        "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "eval_config": dataclasses.asdict(eval_config),
        **decoders.describe(used),
        **descriptions(evaluators, used),
        "untrained_variants": [name for name in wanted if name not in trained],
        "variants": records,
        "speed": timed,
    }
