"""Two evaluators: decoding speed of the decoders table's entries, and training tokens/s per
objective.

Decode and train cost depend on shapes, not on weight values, so both are timed on a freshly
initialised model of the timed variant's shape: each decoder on the attention mask it needs
(`DecoderSpec.timing_mask`, and `timing_config`: a diffusion decoder keeps the timed variant's
block size), with max_len widened to the longest length timed. Each figure is the median of
`repeats` runs after one compiling run; compile time is reported apart (first run minus the
median).
"""

import dataclasses
import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import data
from data import vocab
from evaluation import decoders
from evaluation.config import EvalConfig, SpeedConfig
from evaluation.report.schema import ColumnSpec, TableSpec
from evaluation.run import LoadedRun, Measurement
from model import ModelConfig, architecture_of, make_decoder
from training import step as train_lib
from training.config import CPU_SEQUENTIAL_BF16, TrainConfig

Log = Callable[[str], None]
Point = tuple[int, int, int]  # (batch size, prompt length, new tokens)

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
    ),
    text_columns=2,
    verdicts=(
        {"rule": "cache_speedup", "cache": "ar_cache", "no_cache": "ar_no_cache"},
        {
            "rule": "parallel_speed",
            "against": "ar_cache",
            "families": ["non-AR", "exact-parallel", "diffusion"],
        },
    ),
    method="**Speed**: random weights of the variant's shape (cost does not depend on weight "
    "values); median of several runs after a compiling run, compile time reported apart.",
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


def time_call(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(compile_s, median run_s) of fn, blocking on its outputs."""
    start = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - start
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        runs.append(time.perf_counter() - start)
    median = statistics.median(runs)
    return max(first - median, 0.0), median


def _timing_models(cfg: ModelConfig, specs, max_len: int, log: Log) -> dict:
    """name -> (spec, Models): a fresh model of the shape, with the mask each decoder needs."""
    models = {}
    for spec in specs:
        if spec.timing_mask is None or spec.needs is not None:
            log(
                f"    speed: {spec.label} is not timed (it needs a second model, or runs the "
                "program of another decoder)"
            )
            continue
        if spec.architectures is not None and cfg.architecture not in spec.architectures:
            log(f"    speed: {spec.label} is not timed on a {cfg.architecture} model")
            continue
        mask = architecture_of(cfg).timing_mask(spec.timing_mask)
        base = dataclasses.replace(cfg, max_len=max_len, dropout_rate=0.0)
        fields = spec.timing_config
        fields = fields(base) if callable(fields) else fields  # e.g. the variant's block size.
        shape = dataclasses.replace(
            base, attention_mask_kind=mask, length_head=spec.needs_length_head, **fields
        )
        # Split once: calls on (graphdef, state) skip the graph traversal nnx.split costs.
        models[spec.id] = (spec, decoders.Models(nnx.split(make_decoder(shape, seed=0))))
    return models


def time_decoders(
    cfg: ModelConfig,
    specs: list[decoders.DecoderSpec],
    points: list[Point],
    *,
    repeats: int,
    no_cache_max_length: int,
    log: Log = print,
) -> list[dict]:
    """One row per (point, decoder): {decoder, family, batch_size, prompt_len, new_tokens,
    length, latency_s, ms_per_token, tokens_per_s, compile_s}.

    The decoders of one point are timed one after another, so their ratios are measured side
    by side. Decoders that need a second model, or that are not timed (no timing mask), are
    skipped; so are prefix-recomputing decoders beyond `no_cache_max_length` total tokens.
    """
    max_len = max(prompt_len + new for _, prompt_len, new in points)
    models = _timing_models(cfg, specs, max_len, log)
    rng = np.random.default_rng(0)
    rows = []
    for batch_size, prompt_len, new_tokens in points:
        prompts = decoders.Prompts(
            rng.integers(vocab.FIRST_SYMBOL, cfg.vocab_size, (batch_size, prompt_len), np.int32),
            np.full((batch_size,), prompt_len, np.int32),
            np.full((batch_size,), new_tokens, np.int32),
            new_tokens,
            eos_id=None,  # Every row runs to new_tokens.
        )
        for spec, spec_models in models.values():
            if spec.recomputes_prefix and prompt_len + new_tokens > no_cache_max_length:
                continue
            log(f"    speed: {spec.label}, batch {batch_size}, {prompt_len} + {new_tokens} tokens")
            compile_s, latency = time_call(
                lambda s=spec, m=spec_models, p=prompts: s.decode(m, p).tokens_BxL, repeats
            )
            rows.append(
                {
                    "decoder": spec.id,
                    "family": spec.family,
                    "batch_size": batch_size,
                    "prompt_len": prompt_len,
                    "new_tokens": new_tokens,
                    "length": prompt_len + new_tokens,
                    "latency_s": latency,
                    "ms_per_token": 1e3 * latency / new_tokens,
                    "tokens_per_s": batch_size * new_tokens / latency,
                    "compile_s": compile_s,
                }
            )
    return rows


def timed_shape(run: LoadedRun, speed: SpeedConfig) -> ModelConfig:
    """The timed variant's ModelConfig with the `eval.speed.model` overrides."""
    return ModelConfig.from_dict(
        {**dataclasses.asdict(run.model.cfg), **speed.model, "dropout_rate": 0.0}
    )


def evaluate_decoding_speed(run: LoadedRun, settings: EvalConfig, log: Log) -> Measurement:
    """The speed evaluator: `eval.speed.decoders` at batch 1 over `lengths`, then at a large
    batch."""
    speed = settings.speed
    cfg = timed_shape(run, speed)
    log(f"[speed] decoding, {run.variant} shape ({cfg.num_layers} layers, d={cfg.d_model})")
    plan = [(1, length) for length in speed.lengths] + [(speed.batch_size, speed.throughput_length)]
    points = [(b, speed.prompt_len, length - speed.prompt_len) for b, length in plan]
    rows = time_decoders(
        cfg,
        decoders.lookup(speed.decoders),
        points,
        repeats=speed.repeats,
        no_cache_max_length=speed.no_cache_max_length,
        log=log,
    )
    return Measurement(
        tables={"sampling": rows},
        info={
            "variant": run.variant,
            "model": dataclasses.asdict(cfg),
            "note": "Random weights of the variant's shape, each decoder with the attention mask "
            f"it needs; median of {speed.repeats} runs after a compiling one.",
        },
    )


def training_speed(
    cfg: ModelConfig,
    *,
    objectives: tuple[str, ...],
    seq_len: int,
    batch_size: int,
    steps: int,
    log: Log = print,
) -> list[dict]:
    """Rows {objective, seq_len, batch_size, step_time_s, tokens_per_s, compile_s} on copy data,
    timed with `training.step.bind_train_step`, as train.py runs it."""
    source_len = (seq_len - 2) // 2
    task = data.make_task(
        data.DataConfig(
            task="copy",
            min_len=source_len,
            max_len=source_len,
            seq_len=seq_len,
            num_symbols=cfg.vocab_size - vocab.FIRST_SYMBOL,
        )
    )
    model_cfg = dataclasses.replace(cfg, max_len=seq_len, vocab_size=task.vocab_size)
    batch = task.batch(0, batch_size)
    hparams = train_lib.Hyperparams.from_config(TrainConfig())
    # Made once, outside the timed call, as train.py makes its key once.
    seed_key, step = jax.random.key(0), jnp.int32(0)
    rows = []
    for objective in objectives:
        log(f"    speed: training, {objective}, {seq_len} tokens x {batch_size} rows")
        graphdef, params, opt_state = train_lib.init_train_state(model_cfg, hparams, 0)
        state = {"params": params, "opt_state": opt_state}
        step_fn = train_lib.bind_train_step(graphdef, objective)

        def one_step(state=state, step_fn=step_fn):
            state["params"], state["opt_state"], metrics = step_fn(
                state["params"], state["opt_state"], batch, step, seed_key, hparams
            )
            return metrics["loss"]

        compile_s, step_s = time_call(one_step, steps)
        rows.append(
            {
                "objective": objective,
                "dtype": cfg.dtype,
                "seq_len": seq_len,
                "batch_size": batch_size,
                "step_time_s": step_s,
                "tokens_per_s": batch_size * seq_len / step_s,
                "compile_s": compile_s,
            }
        )
    return rows


def evaluate_training_speed(run: LoadedRun, settings: EvalConfig, log: Log) -> Measurement:
    """The training-speed evaluator: teacher forcing vs sequential, one step each."""
    speed = settings.speed
    cfg = timed_shape(run, speed)
    if jax.default_backend() == "cpu" and cfg.dtype != "float32":
        log(f"[speed] training timed in float32: {CPU_SEQUENTIAL_BF16}")
        cfg = dataclasses.replace(cfg, dtype="float32")
    architecture = architecture_of(cfg)
    objectives = tuple(o for o in ("teacher_forcing", "sequential") if architecture.supports(o))
    if "sequential" not in objectives:
        log(f"[speed] training: a {cfg.architecture} model has no sequential objective")
    rows = training_speed(
        cfg,
        objectives=objectives,
        seq_len=speed.train_seq_len,
        batch_size=speed.train_batch_size,
        steps=speed.train_steps,
        log=log,
    )
    return Measurement(tables={"training": rows})
