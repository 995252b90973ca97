"""Two evaluators: decoding speed of the decoders table's entries, and training tokens/s per
objective.

Decode and train cost depend on shapes, not on weight values, so both are timed on a freshly
initialised model of the timed variant's shape: each decoder on the attention mask it needs
(`DecoderSpec.timing_mask`, and `timing_config`: a diffusion decoder keeps the timed variant's
block size, and is timed again on each further variant's in `eval.speed.variants`), with max_len
widened to the longest length timed. Decoding is timed at batch 1 over `eval.speed.lengths`,
then at each large batch (`batch_size`, `batch_sizes`) at `throughput_length`. Each figure is
the median of `repeats` runs after one compiling run; compile time is reported apart (first run
minus the median).
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
from evaluation.report.schema import ColumnSpec, TableSpec
from evaluation.run import LoadedRun, Measurement
from model import ModelConfig, architecture_of, make_decoder
from objectives import OBJECTIVES
from sections import EvalConfig, SpeedConfig, TrainConfig
from training import checkpoints, run_folder
from training import step as train_lib

Log = Callable[[str], None]
Point = tuple[int, int, int]  # (batch size, prompt length, new tokens)
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
    ),
    text_columns=2,
    verdicts=(
        {"rule": "cache_speedup", "cache": "ar_cache", "no_cache": "ar_no_cache"},
        {"rule": "parallel_speed", "against": "ar_cache", "families": PARALLEL},
        {"rule": "batch_speedup", "against": "ar_cache", "families": PARALLEL},
    ),
    method="**Speed**: random weights of the variant's shape (cost does not depend on weight "
    "values); median of several runs after a compiling run, compile time reported apart. A "
    "decoder *on* a variant was timed with that variant's block size. A parallel decoder's "
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


def _timed_shape(cfg: ModelConfig, spec, max_len: int, lender: ModelConfig) -> ModelConfig:
    """The random-weights model `spec` is timed on: `cfg`'s shape widened to `max_len`, with the
    mask it needs; a `timing_config` function reads `lender`'s shape (its block size)."""
    mask = architecture_of(cfg).timing_mask(spec.timing_mask)
    base = dataclasses.replace(cfg, max_len=max_len, dropout_rate=0.0)
    fields = spec.timing_config
    if callable(fields):  # e.g. the variant's block size.
        fields = fields(dataclasses.replace(lender, max_len=max_len, dropout_rate=0.0))
    return dataclasses.replace(
        base, attention_mask_kind=mask, length_head=spec.needs_length_head, **fields
    )


def _timed_specs(cfg: ModelConfig, specs, log: Log) -> list:
    """The specs that are timed on `cfg`'s architecture, each logged when it is not."""
    timed = []
    for spec in specs:
        if spec.timing_mask is None or spec.needs is not None:
            log(
                f"    speed: {spec.label} is not timed (it needs a second model, or runs the "
                "program of another decoder)"
            )
        elif spec.architectures is not None and cfg.architecture not in spec.architectures:
            log(f"    speed: {spec.label} is not timed on a {cfg.architecture} model")
        else:
            timed.append(spec)
    return timed


def _timing_models(cfg: ModelConfig, specs, max_len: int, log: Log) -> dict:
    """name -> (spec, Models): a fresh model of the shape, with the mask each decoder needs."""
    models = {}
    for spec in _timed_specs(cfg, specs, log):
        shape = _timed_shape(cfg, spec, max_len, cfg)
        # Split once: calls on (graphdef, state) skip the graph traversal nnx.split costs.
        models[spec.id] = (spec, decoders.Models(nnx.split(make_decoder(shape, seed=0))))
    return models


def _lent_models(cfg: ModelConfig, specs, max_len: int, lenders: dict, log: Log) -> list:
    """(spec, Models, variant): each decoder whose timed model reads the variant's shape (its
    `timing_config` is a function: a diffusion decoder's blocks), on each lender's shape that
    gives it a model not timed yet."""
    seen = {(spec.id, _timed_shape(cfg, spec, max_len, cfg)) for spec in specs}
    out = []
    for variant, lender in lenders.items():
        for spec in specs:
            shape = _timed_shape(cfg, spec, max_len, lender)
            if callable(spec.timing_config) and (spec.id, shape) not in seen:
                seen.add((spec.id, shape))
                log(f"    speed: {spec.label} is also timed on {variant}'s shape")
                out.append((spec, decoders.Models(nnx.split(make_decoder(shape, seed=0))), variant))
    return out


def _row(spec, variant, point: Point, latency: float, compile_s: float) -> dict:
    batch_size, prompt_len, new_tokens = point
    return {
        "decoder": spec.id,
        "family": spec.family,
        "variant": variant,
        "batch_size": batch_size,
        "prompt_len": prompt_len,
        "new_tokens": new_tokens,
        "length": prompt_len + new_tokens,
        "latency_s": latency,
        "ms_per_token": 1e3 * latency / new_tokens,
        "tokens_per_s": batch_size * new_tokens / latency,
        "compile_s": compile_s,
    }


def time_decoders(
    cfg: ModelConfig,
    specs: list[decoders.DecoderSpec],
    points: list[Point],
    *,
    repeats: int,
    no_cache_max_length: int,
    log: Log = print,
    variant: str | None = None,
    lenders: dict[str, ModelConfig] | None = None,
) -> list[dict]:
    """One row per (point, decoder, shape): {decoder, family, variant, batch_size, prompt_len,
    new_tokens, length, latency_s, ms_per_token, tokens_per_s, compile_s}.

    `cfg` is the shape of `variant`. A decoder whose timed model reads the variant's shape (a
    diffusion decoder's blocks) is timed again on each of `lenders` (variant -> shape) that
    changes that model; its rows name the variant whose shape it read, the others' None.
    The decoders of one point are timed one after another, so their ratios are measured side
    by side. Decoders that need a second model, or that are not timed (no timing mask), are
    skipped; so are prefix-recomputing decoders beyond `no_cache_max_length` total tokens.
    """
    max_len = max(prompt_len + new for _, prompt_len, new in points)
    models = _timing_models(cfg, specs, max_len, log)
    timed = [(s, m, variant if callable(s.timing_config) else None) for s, m in models.values()]
    timed += _lent_models(cfg, [s for s, _ in models.values()], max_len, lenders or {}, log)
    rng = np.random.default_rng(0)
    rows = []
    for point in points:
        batch_size, prompt_len, new_tokens = point
        prompts = decoders.Prompts(
            rng.integers(vocab.FIRST_SYMBOL, cfg.vocab_size, (batch_size, prompt_len), np.int32),
            np.full((batch_size,), prompt_len, np.int32),
            np.full((batch_size,), new_tokens, np.int32),
            new_tokens,
            eos_id=None,  # Every row runs to new_tokens.
        )
        for spec, spec_models, shape_of in timed:
            if spec.recomputes_prefix and prompt_len + new_tokens > no_cache_max_length:
                continue
            on = f" ({shape_of}'s shape)" if shape_of else ""
            log(f"    speed: {spec.label}{on}, batch {batch_size}, {prompt_len} + {new_tokens}")
            compile_s, latency = time_call(
                lambda s=spec, m=spec_models, p=prompts: s.decode(m, p).tokens_BxL, repeats
            )
            rows.append(_row(spec, shape_of, point, latency, compile_s))
    return rows


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
    for objective_id in objectives:
        log(f"    speed: training, {objective_id}, {seq_len} tokens x {batch_size} rows")
        graphdef, params, opt_state = train_lib.init_train_state(model_cfg, hparams, 0)
        state = {"params": params, "opt_state": opt_state}
        step_fn = train_lib.bind_train_step(graphdef, objective_id)

        def one_step(state=state, step_fn=step_fn):
            state["params"], state["opt_state"], metrics = step_fn(
                state["params"], state["opt_state"], batch, step, seed_key, hparams
            )
            return metrics["loss"]

        compile_s, step_s = time_call(one_step, steps)
        rows.append(
            {
                "objective": objective_id,
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
