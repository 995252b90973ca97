"""The latency evaluator: each decoder that the quality evaluator scores, timed on the trained
models and held-out rows, at batch 1 and at a large batch (`eval.latency`).

This is the latency of the field's table (Gu et al. 2018, Ghazvininejad et al. 2019, Helcl et
al. 2022): real inputs, so an AR decoder stops at each row's EOS, a mask-predict decoder runs
its K passes over the predicted length, and speculative decoding drafts with the trained CMLM
model, which accepts as many tokens as it really would. The speed evaluator (speed.py) times
random weights over synthetic lengths instead, which isolates the cost of a shape.

How it is timed: the first max(batch_size, single_rows) rows of the eval split, with the quality
evaluator's room for new tokens. Batch 1: the median wall time of `single_rows` calls, one
held-out row each, its prompt cut to the rung of `data.batching.WIDTH_LADDER` that holds it
(not padded to the batch's widest), after a compiling call for each width. Large batch: the
first `batch_size` rows as one call, the median of `repeats` calls after a compiling one. Both
block until the output is ready; each median comes with the sem of its calls' mean, their spread.
"""

import dataclasses
import statistics
import time
from collections.abc import Callable

import jax
from flax import nnx

from data import batching
from evaluation import decoders, scoring
from evaluation.report.schema import QUALITY, MetricSpec
from evaluation.run import LoadedRun, Measurement
from sections import EvalConfig

Log = Callable[[str], None]

METRICS = (
    MetricSpec(
        "latency_1",
        "latency, batch 1 (ms)",
        "number",
        QUALITY,
        per_decoder=True,
        method="**Latency** (the quality table's last columns): wall time of one decoding call "
        "on the trained models and held-out rows, in ms, on this machine: at batch 1 the median "
        "of `eval.latency.single_rows` calls of one row each; at the large batch "
        "(`eval.latency.batch_size` rows) the median of `eval.latency.repeats` calls; each "
        "after a compiling call; ± is the sem of the timed calls' mean (their spread). At batch "
        "1 each prompt is cut to its length bucket (data.batching.WIDTH_LADDER); the large "
        "batch's are padded to the widest of its rows.",
    ),
    MetricSpec(
        "latency_batch",
        "latency, batch {large_batch} (ms)",  # tables.py fills in eval.latency.batch_size.
        "number",
        QUALITY,
        per_decoder=True,
        verdicts=(
            {
                "rule": "latency_speedup",
                "against": "ar_cache",
                "families": ["non-AR", "exact-parallel", "diffusion"],
            },
        ),
    ),  # fmt: skip
    MetricSpec("latency_batch_size", "large batch (rows)", hidden=True),
)


def _split(models: decoders.Models) -> decoders.Models:
    """The models as (graphdef, state): calls then skip the graph traversal nnx.split costs."""

    def split(model):
        return nnx.split(model) if isinstance(model, nnx.Module) else model

    second = models.second
    return decoders.Models(split(models.model), None if second is None else split(second))


def _call(spec, models, prompts) -> float:
    start = time.perf_counter()
    jax.block_until_ready(spec.decode(models, prompts).tokens_BxL)
    return time.perf_counter() - start


def _rows(prompts: decoders.Prompts, rows: slice) -> decoders.Prompts:
    return decoders.Prompts(
        prompts.prompts_BxP[rows],
        prompts.prompt_lengths_B[rows],
        prompts.target_lengths_B[rows],
        prompts.max_new_tokens,
        prompts.eos_id,
        ends_B=None if prompts.ends_B is None else prompts.ends_B[rows],
    )


def _alone(prompts: decoders.Prompts, row: int) -> decoders.Prompts:
    """Row `row` by itself, its prompt cut to the width of `batching.WIDTH_LADDER` that holds
    it: not padded to the widest prompt of the batch, and few widths to compile."""
    one = _rows(prompts, slice(row, row + 1))
    width = batching.bucket_width(int(one.prompt_lengths_B[0]), batching.WIDTH_LADDER)
    return dataclasses.replace(
        one, prompts_BxP=one.prompts_BxP[:, : min(width, one.prompts_BxP.shape[1])]
    )


def time_decoder(
    spec, models, prompts: decoders.Prompts, settings
) -> tuple[list[float], list[float]]:
    """(seconds of each batch-1 call, seconds of each `batch_size`-row call), compiled first."""
    singles = [_alone(prompts, i) for i in range(settings.single_rows)]
    widths = {}
    for one in singles:  # Compiles each prompt width once.
        widths.setdefault(one.prompts_BxP.shape[1], one)
    for one in widths.values():
        _call(spec, models, one)
    single = [_call(spec, models, one) for one in singles]
    large = _rows(prompts, slice(0, settings.batch_size))
    _call(spec, models, large)  # Compiles the large batch.
    batch = [_call(spec, models, large) for _ in range(settings.repeats)]
    return single, batch


def _median_ms(seconds: list[float]) -> tuple[float, float | None]:
    """(median ms, the sem of the calls' mean in ms: their spread; None for one call)."""
    sem = statistics.stdev(seconds) / len(seconds) ** 0.5 if len(seconds) > 1 else None
    return 1e3 * statistics.median(seconds), None if sem is None else 1e3 * sem


def evaluate(run: LoadedRun, settings: EvalConfig, log: Log) -> Measurement:
    """latency_1 and latency_batch (ms) per scored decoder; nothing when eval.latency is off
    or the task has no prompts (plain text)."""
    latency = settings.latency
    if not latency.batch_size:
        return Measurement(skipped="eval.latency.batch_size is 0 (off)")
    rows = max(latency.batch_size, latency.single_rows)
    batch = next(scoring.eval_batches(run.task, rows, rows))
    if len(batch["prefix_lengths"]) < rows:
        raise ValueError(
            f"eval.latency needs {rows} held-out rows; the eval split has "
            f"{len(batch['prefix_lengths'])}"
        )
    P = int(batch["prefix_lengths"].max())
    if P <= 1:
        return Measurement()  # Plain text: nothing to continue.
    longest = max(len(r) for r in scoring.references(batch))
    max_new = min(longest, run.model.cfg.max_len + 1 - P)
    prompts = scoring.prompts_of(batch, P, max_new)
    out = Measurement(metrics={"latency_batch_size": (float(latency.batch_size), None)})
    for spec, models in scoring.scored_decoders(run, settings, False, log):
        log(f"    latency: {spec.label}, batch 1 and {latency.batch_size}")
        single_s, batch_s = time_decoder(spec, _split(models), prompts, latency)
        out.metrics[f"latency_1/{spec.id}"] = _median_ms(single_s)
        out.metrics[f"latency_batch/{spec.id}"] = _median_ms(batch_s)
    return out
