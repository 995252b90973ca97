"""Two evaluators: decoding speed of the decoders table's entries, and training tokens/s per
objective.

Decode and train cost depend on shapes, not on weight values, so both are timed on a freshly
initialised model of the timed variant's shape: each decoder on the attention mask it needs
(`DecoderSpec.timing_mask`, and `timing_config`: a diffusion decoder keeps the timed variant's
block size, and is timed again on each further variant's in `eval.speed.variants`), with max_len
widened to the longest length timed. Decoding is timed at batch 1 over `eval.speed.lengths`,
then at each large batch (`batch_size`, `batch_sizes`) at `throughput_length`. Each figure is
the median of `repeats` runs after one compiling run; compile time is reported apart (first run
minus the median). The timing itself is evaluation/timing.py.
"""

import dataclasses
from collections.abc import Callable

import jax

from evaluation import decoders
from evaluation.report.schema import ColumnSpec, TableSpec
from evaluation.run import LoadedRun, Measurement
from evaluation.timing import Point, time_decoders, training_speed
from model import ModelConfig, architecture_of
from objectives import OBJECTIVES
from sections import EvalConfig, SpeedConfig
from training import checkpoints, run_folder

Log = Callable[[str], None]
PARALLEL = ["non-AR", "exact-parallel", "diffusion"]  # Families set against AR's latency.

SAMPLING_TABLE = TableSpec(
    name="sampling",
    title="Decoding speed",
    columns=(
        ColumnSpec("decoder", "decoder", "decoder"),
        ColumnSpec("family", "family"),
        ColumnSpec("batch_size", "batch"),
        ColumnSpec("prompt_len", "prompt"),
        ColumnSpec("new_tokens", "new tokens"),
        ColumnSpec("latency_s", "latency (ms)", "{:.2f}", 1e3),
        ColumnSpec("ms_per_token", "ms / token", "{:.3f}"),
        ColumnSpec("tokens_per_s", "tokens / s", "{:,.0f}"),
        ColumnSpec("compile_s", "compile (s)", "{:.2f}"),
        ColumnSpec("calls_per_block", "model calls / block", "{:.1f}"),
    ),
    text_columns=2,
    verdicts=(
        {"rule": "cache_speedup", "cache": "ar_cache", "no_cache": "ar_no_cache"},
        {"rule": "parallel_speed", "against": "ar_cache", "families": PARALLEL},
        {"rule": "batch_speedup", "against": "ar_cache", "families": PARALLEL},
    ),
    method="**Speed**: random weights of the variant's shape (cost does not depend on weight "
    "values); median of several runs after a compiling run, compile time reported apart. A "
    "decoder *on* a variant was timed with that variant's block size; its model calls per "
    "block are the batch's (a step that unmasks no row's token reuses the last logits). A "
    "parallel decoder's "
    "speed-up over AR (cache) is the ratio of their latencies at the same batch and lengths.",
)
TRAINING_TABLE = TableSpec(
    name="training",
    title="Training speed",
    columns=(
        ColumnSpec("objective", "objective"),
        ColumnSpec("dtype", "dtype"),
        ColumnSpec("seq_len", "length"),
        ColumnSpec("batch_size", "batch"),
        ColumnSpec("step_time_s", "step (s)", "{:.4f}"),
        ColumnSpec("tokens_per_s", "tokens / s", "{:,.0f}"),
        ColumnSpec("compile_s", "compile (s)", "{:.2f}"),
    ),
    text_columns=2,
    verdicts=({"rule": "training_speedup", "fast": "teacher_forcing", "slow": "sequential"},),
)


def with_overrides(cfg: ModelConfig, speed: SpeedConfig) -> ModelConfig:
    """`cfg` with the `eval.speed.model` overrides, and no dropout."""
    return ModelConfig.from_dict({**dataclasses.asdict(cfg), **speed.model, "dropout_rate": 0.0})


def timed_shape(run: LoadedRun, speed: SpeedConfig) -> ModelConfig:
    """The timed variant's ModelConfig with the `eval.speed.model` overrides."""
    return with_overrides(run.model.cfg, speed)


def speed_points(speed: SpeedConfig) -> list[Point]:
    """(batch, prompt, new tokens): batch 1 over `lengths`, then each of `batch_sizes` and
    `batch_size`, smallest first, at `throughput_length`; each point once."""
    batches = sorted({*speed.batch_sizes, speed.batch_size})
    plan = [(1, n) for n in speed.lengths] + [(b, speed.throughput_length) for b in batches]
    return [(b, speed.prompt_len, n - speed.prompt_len) for b, n in dict.fromkeys(plan)]


def _lenders(run: LoadedRun, speed: SpeedConfig, log: Log) -> dict[str, ModelConfig]:
    """The shapes of the further variants `eval.speed.variants` lists (trained, same seed)."""
    lenders = {}
    for name in speed.variants:
        if name == run.variant or name in lenders:
            continue
        sibling = run_folder.sibling_run(run.run_dir, name)
        if sibling is None:
            log(f"    speed: {name} (eval.speed.variants) is not trained; its shape is not timed")
            continue
        lenders[name] = with_overrides(checkpoints.load_config(sibling)[0].model, speed)
    return lenders


def evaluate_decoding_speed(run: LoadedRun, settings: EvalConfig, log: Log) -> Measurement:
    """The speed evaluator: `eval.speed.decoders` at batch 1 over `lengths`, then at each large
    batch; the diffusion decoders also on the block sizes of the further `variants`."""
    speed = settings.speed
    cfg = timed_shape(run, speed)
    log(f"[speed] decoding, {run.variant} shape ({cfg.num_layers} layers, d={cfg.d_model})")
    lenders = _lenders(run, speed, log)
    rows = time_decoders(
        cfg,
        decoders.lookup(speed.decoders),
        speed_points(speed),
        repeats=speed.repeats,
        no_cache_max_length=speed.no_cache_max_length,
        log=log,
        variant=run.variant,
        lenders=lenders,
    )
    lent = list(
        dict.fromkeys(r["variant"] for r in rows if r["variant"] not in (None, run.variant))
    )
    lent = f" Diffusion decoders also on the blocks of {', '.join(lent)}." if lent else ""
    return Measurement(
        tables={"sampling": rows},
        info={
            "variant": run.variant,
            "model": dataclasses.asdict(cfg),
            "note": "Random weights of the variant's shape, each decoder with the attention mask "
            f"it needs; median of {speed.repeats} runs after a compiling one.{lent}",
        },
    )


def evaluate_training_speed(run: LoadedRun, settings: EvalConfig, log: Log) -> Measurement:
    """The training-speed evaluator: one step of each next-token objective (teacher forcing vs
    sequential) that the run's architecture trains with."""
    speed = settings.speed
    cfg = timed_shape(run, speed)
    architecture = architecture_of(cfg)
    objectives = []
    for record in OBJECTIVES.values():
        refusal = architecture.refusal(record)
        if record.next_token and refusal:
            log(f"[speed] training: a {cfg.architecture} model has no {record.id} objective")
        elif record.next_token:
            objectives.append(record)
    low_precision = [o.cpu_low_precision for o in objectives if o.cpu_low_precision]
    if jax.default_backend() == "cpu" and cfg.dtype != "float32" and low_precision:
        log(f"[speed] training timed in float32: {low_precision[0]}")
        cfg = dataclasses.replace(cfg, dtype="float32")
    rows = training_speed(
        cfg,
        objectives=tuple(o.id for o in objectives),
        seq_len=speed.train_seq_len,
        batch_size=speed.train_batch_size,
        steps=speed.train_steps,
        log=log,
    )
    return Measurement(tables={"training": rows})
