"""Sampling speed: `generate` (KV cache) vs `generate_no_cache`, one JSON line per decoder.

  python -m benchmarks.sampling                       # the README's shape (greedy, fp32)
  python -m benchmarks.sampling --batch_size=1 --new_tokens=1008 --decoders=kv_cache,no_cache

tokens_per_s counts generated tokens only (batch_size * new_tokens / median seconds). compile_s is
the first call's wall time minus the median: tracing, lowering and XLA compilation.

Measured (2026-11-24, the 2-core CPU machine CI runs on, AMD EPYC, fp32; that machine swings by
up to ±30% between runs minutes apart, so these are medians of several runs and ratios are taken
within one run). Default shape: 4 layers, d_model 256, 4 heads, d_ff 1024, vocab 256, batch 8,
prompt 16, 240 new tokens, greedy, median of 5 repeats per line:

| decoder | generated tokens/s | compile |
| --- | --- | --- |
| `generate` (cache phases of 96, 176, 255 slots) | 4,280-4,610 (5 runs), median 4,370 | 3.1-3.4 s |
| `generate`, `--cache_phases 1` (one 255-slot cache) | 3,870-4,110 | 1.8-1.9 s |
| commit 8e7dac9 (one cache, rng split in the loop) | 3,240-3,680 | 1.8-2.0 s |

Peers at this shape (../shared/bench/, HF `generate` with its cache): 1,121-1,167 tokens/s; the
Flax lm1b example sampler: 744-781 (from ../shared/bench/README.md: `hf_generate.py --cache on
--reps 5` on a 2-core Intel Xeon of the CI kind; that README gives no date). Side by side with HF
`generate` (torch 2.13.0, 2 threads) on a 2-core AMD EPYC of the CI kind, alternating runs,
`generate` / HF tokens/s and their ratio:
  - this shape, 2026-11-26, after the cache layout change below (8 pairs, `python -m
    benchmarks.sampling --decoders=kv_cache` then `hf_generate.py --cache on --reps 5`):
    5,645/1,748 3.23x, 4,956/1,817 2.73x, 4,422/1,861 2.38x, 6,894/1,849 3.73x, 6,219/1,864
    3.34x, 5,887/1,751 3.36x, 6,310/1,803 3.50x, 6,646/1,913 3.47x: median 3.35x (the second
    and third pairs shared the CPU with a short test run). Before it, the same day: median
    2.76x over 8 pairs (HF is faster on this processor than on the bench README's Intel one);
  - GPT-2 small, 2026-11-26 (`--num_layers=12 --d_model=768 --num_heads=12 --d_ff=3072
    --vocab_size=50257 --batch_size=8 --prompt_len=16 --new_tokens=112 --repeats=3`), after the
    change (2 pairs): 200.9/98.5 2.04x, 201.1/100.8 2.00x; before it, 3 pairs: 1.91-2.13x.
    launch.py's flags, chosen at the tiny shape, checked here: Eigen's multi-threaded dots
    (`XLA_FLAGS=--xla_cpu_multi_thread_eigen=true`) gave 198-200 tokens/s against 189-200
    without, in alternating runs: no gain, as a step streams ~500 MB of weights (memory-bound).
The cache layout change of 2026-11-26 (keys `[B, H, K, S]`, values `[B, H, S, K]`; a decode
step's attention as two multiply-reduces along the contiguous axes, model/attention.py
`cached_attention`), against the commit before it, 5 alternating pairs of `--decoders=kv_cache`:
batch 8, 6,831-7,225 tokens/s (median 6,940) against 5,601-6,975 (6,204); `--batch_size=1`,
3,221-3,467 (3,331) against 2,566-2,884 (2,793). As batched dots over (B, H), the attention of
a step at batch 8 took about 0.4 ms of its 1.2-1.3 ms (thunk times of `jax.profiler.trace`
around one `generate` call at this shape): 32 tiny [1, 64] x [64, S] products per layer.
At 1024 total tokens (`--batch_size=1 --prompt_len=16 --new_tokens=1008 --repeats=3`),
`generate` ran at 1,040 tokens/s and `generate_no_cache` at 8.0: 130x (median 0.97 s vs 126.2 s;
compile 3.6 s, caches of 352, 688 and 1023 slots).

What made it fast (JAX profiler traces on the 2-core CPU, 2026-11-24 unless dated; details in
the commit messages and the project's closing notes): one `lax.while_loop` in one
jitted program, the prompt prefilled in one pass; a head-major cache (a `[B, S, H, K]` one was
transposed whole at every step: 4-8x slower attention), keys stored `[B, H, K, S]`; cache writes as
one in-place `dynamic_update_slice` at a slot shared by the batch; greedy decoding skips the
sampling branch (`lax.cond`; the top-k/top-p sort cost 0.45 ms a step); launch.py's XLA CPU flags
(Eigen dots over YNNPACK fusions, about 1.5x at batch 8); the cache grows in phases (a decode step
took 0.8-0.9 ms with 64 slots, 1.4-2.1 ms with 255); one random key per step split before the loop
(threefry is a small rolled loop on CPU). What remains is mostly arithmetic: the 17 weight dots of
a batch-8 step (50 MFLOP) took 0.68-0.88 ms in three such traces (2026-11-26), 55-75 GFLOP/s on
one core. The second core did not help: two independent half-batch chains in one program took as
long as one chain of twice the batch (2026-11-24), and in alternating runs of this benchmark on
2026-11-26 neither the batch `shard_map`ped over two forced CPU devices, nor
`--xla_cpu_multi_thread_eigen=true`, nor `--xla_cpu_enable_concurrency_optimized_scheduler=true`
was faster (YNNPACK dot fusions were 20-30% slower); these probes' scripts are not in the
repository and their tokens/s were not recorded. On an H100 (2026-11-24, `python -m
benchmarks.sampling`, one run; JAX 0.11.2, before the cache grew in phases): 53,200 generated
tokens/s, compile 4.3 s; on an H100 on 2026-11-26 (`scripts/gpu_checks.sh`, which runs `python -m
benchmarks.sampling --dtype=float32 --decoders=kv_cache,no_cache`; one run, cache phases of 96,
176, 255 slots): 54,062 tokens/s, compile 6.1 s, and no cache 17,551 (3.1x).

`--dtype=bfloat16` (bf16 parameters and compute) against float32, alternating runs on the 2-core
CPU (2026-11-26, `--decoders=kv_cache`, default shape): float32 3,879 and 3,932 tokens/s,
bfloat16 4,809 and 3,601: no clear gain on this CPU, whose dots are not faster in bf16.
"""

import launch

launch.configure_xla_cpu()

import functools  # noqa: E402
import json  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from evaluation.timing import time_call  # noqa: E402
from model import ModelConfig, generate, generate_no_cache, make_decoder  # noqa: E402
from model.sampling import cache_sizes  # noqa: E402

flags.DEFINE_integer("num_layers", 4, "Decoder layers.", lower_bound=1)
flags.DEFINE_integer("d_model", 256, "Model width.", lower_bound=1)
flags.DEFINE_integer("num_heads", 4, "Attention heads.", lower_bound=1)
flags.DEFINE_integer("d_ff", 1024, "MLP width.", lower_bound=1)
flags.DEFINE_integer("vocab_size", 256, "Vocabulary size.", lower_bound=1)
flags.DEFINE_integer("batch_size", 8, "Rows decoded together.", lower_bound=1)
flags.DEFINE_integer("prompt_len", 16, "Prompt tokens per row.", lower_bound=1)
flags.DEFINE_integer("new_tokens", 240, "Generated tokens per row.", lower_bound=1)
flags.DEFINE_integer("repeats", 5, "Timed runs per decoder; the median is reported.", lower_bound=1)
flags.DEFINE_list("decoders", ["kv_cache", "no_cache"], "Which decoders to time.")
flags.DEFINE_integer(
    "cache_phases",
    None,
    "kv_cache: the cache grows in this many steps (default: generate's).",
    lower_bound=1,
)
flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "Compute and parameter dtype.")
FLAGS = flags.FLAGS


def time_decoder(decode, model, prompts_BxP, new_tokens: int, repeats: int) -> dict:
    """Median seconds over `repeats` runs after a first (compiling) call."""
    compile_s, median_s = time_call(
        lambda: decode(model, prompts_BxP, max_new_tokens=new_tokens), repeats
    )
    return {
        "median_s": round(median_s, 5),
        "compile_s": round(compile_s, 3),
        "tokens_per_s": round(prompts_BxP.shape[0] * new_tokens / median_s, 1),
    }


def main(argv):
    del argv
    decoders = {
        "kv_cache": functools.partial(generate, cache_phases=FLAGS.cache_phases),
        "no_cache": generate_no_cache,
    }
    unknown = set(FLAGS.decoders) - decoders.keys()
    if unknown:
        raise app.UsageError(f"unknown decoders {sorted(unknown)}; choose from {list(decoders)}")
    total_len = FLAGS.prompt_len + FLAGS.new_tokens
    cfg = ModelConfig(
        vocab_size=FLAGS.vocab_size,
        d_model=FLAGS.d_model,
        num_heads=FLAGS.num_heads,
        num_layers=FLAGS.num_layers,
        d_ff=FLAGS.d_ff,
        max_len=total_len,
        dtype=FLAGS.dtype,
        param_dtype=FLAGS.dtype,
    )
    model = make_decoder(cfg)
    rng = np.random.default_rng(0)
    prompts_BxP = rng.integers(0, cfg.vocab_size, (FLAGS.batch_size, FLAGS.prompt_len))
    shape = dict(
        num_layers=cfg.num_layers,
        d_model=cfg.d_model,
        num_heads=cfg.num_heads,
        d_ff=cfg.d_ff,
        vocab_size=cfg.vocab_size,
        batch_size=FLAGS.batch_size,
        prompt_len=FLAGS.prompt_len,
        new_tokens=FLAGS.new_tokens,
        total_len=total_len,
        dtype=FLAGS.dtype,
        sampling="greedy",
    )
    kv_cache_sizes = cache_sizes(FLAGS.prompt_len, FLAGS.new_tokens, FLAGS.cache_phases)
    device = f"{jax.devices()[0].platform}:{jax.devices()[0].device_kind}"
    results = {}
    for name in FLAGS.decoders:
        results[name] = time_decoder(
            decoders[name], model, prompts_BxP, FLAGS.new_tokens, FLAGS.repeats
        )
        print(
            json.dumps(
                {
                    "decoder": name,
                    **results[name],
                    "repeats": FLAGS.repeats,
                    **shape,
                    **({"kv_cache_sizes": kv_cache_sizes} if name == "kv_cache" else {}),
                    "device": device,
                }
            ),
            flush=True,
        )
    if {"kv_cache", "no_cache"} <= results.keys():
        speedup = results["no_cache"]["median_s"] / results["kv_cache"]["median_s"]
        print(
            json.dumps(
                {
                    "kv_cache_speedup_over_no_cache": round(speedup, 1),
                    "total_len": total_len,
                    "batch_size": FLAGS.batch_size,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    launch.run(main)
