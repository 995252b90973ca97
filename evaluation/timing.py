"""Timing on random weights, for the speed evaluators (evaluation/speed.py) and the benchmarks:
`time_call` (compile time apart from the median of repeated runs; `call_seconds` and
`median_seconds` its parts, for a caller that measures more around the repeats),
`time_decoders` (each decoder on a fresh model of a shape, with the attention mask it needs)
and `training_speed` (one train step per objective on copy data, as train.py runs it).
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
from model import ModelConfig, architecture_of, make_decoder
from sections import TrainConfig
from training import step as train_lib

Log = Callable[[str], None]
Point = tuple[int, int, int]  # (batch size, prompt length, new tokens)


def time_call(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(compile_s, median run_s) of fn, blocking on its outputs."""
    first = call_seconds(fn)
    median = median_seconds(fn, repeats)
    return max(first - median, 0.0), median


def call_seconds(fn: Callable[[], object]) -> float:
    """The wall time of one call of fn, blocking on its outputs."""
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """The median wall time of `repeats` calls of fn (compiled already, or the first counts)."""
    return statistics.median(call_seconds(fn) for _ in range(repeats))


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


def _row(spec, variant, point: Point, latency: float, compile_s: float, out) -> dict:
    """A timed row; a diffusion decoder's also holds its model calls per block (`out`'s: a call
    runs the whole batch, so a step is skipped only where no row unmasked a token)."""
    batch_size, prompt_len, new_tokens = point
    calls_B = getattr(out, "calls_per_block_B", None)
    calls = {} if calls_B is None else {"calls_per_block": float(np.mean(np.asarray(calls_B)))}
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
        **calls,
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
            last = []  # The last timed call's output (every call draws the same keys).

            def call(s=spec, m=spec_models, p=prompts, last=last):
                last[:] = [s.decode(m, p)]
                return last[0].tokens_BxL

            compile_s, latency = time_call(call, repeats)
            rows.append(_row(spec, shape_of, point, latency, compile_s, last[0]))
    return rows


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
    timed with `training.step.bind_train_step` on the batch as train.py feeds it (`as_trained`);
    tokens_per_s counts the rows' seq_len positions, whatever each stack computes."""
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
    batch = train_lib.as_trained(model_cfg, task.batch(0, batch_size))
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
