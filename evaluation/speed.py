"""Speed: AR sampling with and without the KV cache, and training tokens/s per objective.

Decode and train cost depend on shapes, not on weight values, so both are timed on a freshly
initialised model of the variant's shape (max_len widened to the longest length timed). Each
figure is the median of `repeats` runs after one compiling run; compile time is reported apart
(first run minus the median).
"""

import dataclasses
import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from data import vocab
from model import ModelConfig, generate, make_decoder


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


def _prompts(cfg: ModelConfig, batch_size: int, prompt_len: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(vocab.FIRST_SYMBOL, cfg.vocab_size, (batch_size, prompt_len), np.int32)


def sampling_speed(
    cfg: ModelConfig,
    lengths: tuple[int, ...],
    *,
    no_cache_max_length: int,
    prompt_len: int,
    batch_size: int,
    throughput_length: int,
    repeats: int,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Rows {decoder, batch_size, length, new_tokens, latency_s, tokens_per_s, ms_per_token,
    compile_s}: batch-1 latency over `lengths`, then large-batch throughput at one length."""
    max_len = max(*lengths, throughput_length)
    model = make_decoder(dataclasses.replace(cfg, max_len=max_len, dropout_rate=0.0), seed=0)
    plan = [(1, length) for length in lengths] + [(batch_size, throughput_length)]
    rows = []
    for rows_b, length in plan:
        prompts_BxP = _prompts(model.cfg, rows_b, prompt_len)
        new_tokens = length - prompt_len
        for use_cache in (True, False):
            if not use_cache and length > no_cache_max_length:
                continue
            decoder = "cache" if use_cache else "no cache"
            log(f"    speed: {decoder:8s} batch {rows_b:3d}, {length:5d} tokens")
            compile_s, run_s = time_call(
                lambda p=prompts_BxP, n=new_tokens, c=use_cache: (
                    generate(model, p, max_new_tokens=n, use_cache=c).tokens_BxL
                ),
                repeats,
            )
            rows.append(
                {
                    "decoder": decoder,
                    "batch_size": rows_b,
                    "length": length,
                    "new_tokens": new_tokens,
                    "latency_s": run_s,
                    "tokens_per_s": rows_b * new_tokens / run_s,
                    "ms_per_token": 1e3 * run_s / new_tokens,
                    "compile_s": compile_s,
                }
            )
    return rows


def training_speed(
    cfg: ModelConfig,
    *,
    objectives: tuple[str, ...],
    seq_len: int,
    batch_size: int,
    steps: int,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Rows {objective, seq_len, batch_size, step_time_s, tokens_per_s, compile_s} on copy data,
    timed with `training.step.bind_train_step`, as train.py runs it."""
    # Imported here: evaluation works without the training package (e.g. on foreign checkpoints).
    import data
    from experiments.base import base_config
    from training import step as train_lib

    data_config = data.default_data_config()
    source_len = (seq_len - 2) // 2
    data_config.update(task="copy", min_len=source_len, max_len=source_len, seq_len=seq_len)
    data_config.num_symbols = cfg.vocab_size - vocab.FIRST_SYMBOL
    task = data.make_task(data_config)
    model_cfg = dataclasses.replace(cfg, max_len=seq_len, vocab_size=task.vocab_size)
    batch = task.batch(0, batch_size)
    rows = []
    # Made once, outside the timed call, as train.py makes its key once.
    seed_key, step = jax.random.key(0), jnp.int32(0)
    for objective in objectives:
        log(f"    speed: training, {objective}, {seq_len} tokens x {batch_size} rows")
        hparams = train_lib.Hyperparams.from_config(base_config().train)
        graphdef, params, opt_state = train_lib.init_train_state(model_cfg, hparams, 0)
        state = {"params": params, "opt_state": opt_state}
        step_fn = train_lib.bind_train_step(graphdef, objective)

        def one_step(state=state, step_fn=step_fn, hparams=hparams):
            state["params"], state["opt_state"], metrics = step_fn(
                state["params"], state["opt_state"], batch, step, seed_key, hparams
            )
            return metrics["loss"]

        compile_s, step_s = time_call(one_step, steps)
        rows.append(
            {
                "objective": objective,
                "seq_len": seq_len,
                "batch_size": batch_size,
                "step_time_s": step_s,
                "tokens_per_s": batch_size * seq_len / step_s,
                "compile_s": compile_s,
            }
        )
    return rows
