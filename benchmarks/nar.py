"""Mask-predict vs AR (KV cache) speed: one JSON line per (decoder, batch size, target length).

  python -m benchmarks.nar                      # experiments/ar_vs_nar.py's model shape
  python -m benchmarks.nar --batch_sizes=1 --target_lens=128 --iterations=1,2,4,8

Untrained models (speed does not depend on the weights), timed by evaluation.timing.time_decoders
with the decoders table's entries: prompt = a source as long as the target plus 2 tokens (BOS,
SEP); AR generates target_len tokens (new_tokens), mask-predict fills target_len MASKs in K
passes. latency_s is the median of --repeats runs; tokens_per_s = batch_size * target_len /
latency_s; compile_s is the first call's extra time (mask-predict compiles once for every K).

The one-stack decoder, measured 2026-11-24 (2-core CPU; `python -m benchmarks.nar
--batch_sizes=1`, and with `--nar_mask=full`, two runs each, one process per mask,
interleaved; milliseconds per call):

| target length | AR (cache) | K=1 | K=4 | K=4, `--nar_mask=full` (re-encoding) |
| --- | --- | --- | --- | --- |
| 64 | 10.5-14.1 | 3.6-4.0 | 6.3-7.4 | 9.6-9.7 (AR in that run: 8.6-10.3) |
| 128 | 20.0-22.0 | 7.8-7.9 | 11.8-13.7 | 17.3-19.9 |
| 256 | 61-88 | 10.6-11.0 | 24.6-27.9 | 40.0-47.3 |

At batch 64 (`--batch_sizes=64 --repeats=3`, same day) the cores are busy either way: K=1 took
0.56-0.73x AR's time and K=4 1.3-1.8x it: refinement's speed-up exists only at small batch, as
Helcl et al. (2022) report for GPUs. On an H100 (2026-11-24, `python -m benchmarks.nar`, one run;
JAX 0.11.2): batch 1, K=4 took 3.1 / 2.9 / 2.3 ms at 64 / 128 / 256 target tokens against AR's
8.8 / 14.2 / 23.9 ms; at batch 64, 3.9 vs 8.1 ms at 64 tokens and 7.1 vs 36.3 ms at 256 (the GPU
is far from busy at this size). These figures were measured before this benchmark moved onto
evaluation.speed.time_decoders (2026-11-26); the workload is the same.

The encoder-decoder, its encoder run once per call against the whole model re-run every pass
(the path before 2026-12-07, timed as `mask_predict_kK_every_pass`), at experiments/translate.py's
shape (measured 2026-12-07, 2-core CPU, idle but for this session; two runs of
`python -m benchmarks.nar --architecture=encoder_decoder --num_layers=3 --d_model=192
--d_ff=768 --vocab_size=4000 --batch_sizes=1,64 --target_lens=32,64 --iterations=1,4,10
--repeats=5`; ms per call, the mean of the two runs' medians, once / every pass, and the
ratio every pass / once in each run):

| batch, target | AR (cache) | K=1 | K=4 | K=10 |
| --- | --- | --- | --- | --- |
| 1, 32 | 20.0 | 7.6 / 11.6 (1.47-1.58x) | 12.8 / 25.0 (1.93-1.98x) | 24.7 / 57.1 (2.26-2.37x) |
| 1, 64 | 38.5 | 10.6 / 20.1 (1.88-1.89x) | 19.9 / 47.2 (2.35-2.39x) | 41.8 / 109 (2.54-2.71x) |
| 64, 32 | 294 | 140 / 266 (1.86-1.94x) | 387 / 960 (2.47-2.49x) | 905 / 2389 (2.47-2.82x) |
| 64, 64 | 754 | 274 / 627 (2.23-2.35x) | 790 / 2325 (2.88-3.00x) | 1799 / 5496 (3.04-3.07x) |

Encoding once makes K=1 2.5-3.7x faster than AR (cache) at batch 1 here, where re-running the
encoder gave 1.7-2.0x; random weights run every row to its full length, so AR stops at no EOS.
"""

import launch

launch.configure_xla_cpu()

import dataclasses  # noqa: E402
import json  # noqa: E402

import jax  # noqa: E402
from absl import flags  # noqa: E402

from evaluation import decoders  # noqa: E402
from evaluation.timing import time_decoders  # noqa: E402
from model import ModelConfig  # noqa: E402
from model.architectures import ARCHITECTURES, architecture_of  # noqa: E402

flags.DEFINE_integer("num_layers", 2, "Decoder layers.", lower_bound=1)
flags.DEFINE_integer("d_model", 128, "Model width.", lower_bound=1)
flags.DEFINE_integer("num_heads", 4, "Attention heads.", lower_bound=1)
flags.DEFINE_integer("d_ff", 512, "MLP width.", lower_bound=1)
flags.DEFINE_integer("vocab_size", 21, "Vocabulary size (16 symbols + 5 specials).", lower_bound=1)
flags.DEFINE_list("batch_sizes", ["1", "64"], "Rows decoded together.")
flags.DEFINE_list("target_lens", ["32", "64", "128", "256"], "Target tokens per row.")
flags.DEFINE_list("iterations", ["1", "4"], "Mask-predict passes K.")
flags.DEFINE_integer("repeats", 5, "Timed runs per decoder; the median is reported.", lower_bound=1)
flags.DEFINE_enum(
    "nar_mask",
    "prefix_full",
    ["prefix_full", "full"],
    "The CMLM model's mask: prefix_full encodes the prompt once (KV cache), full every pass.",
)
flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "Compute dtype (params fp32).")
flags.DEFINE_enum(
    "architecture",
    "decoder",
    list(ARCHITECTURES),
    "The model: one stack, or an encoder-decoder (its mask-predict also timed re-running the "
    "whole model every pass, the path before the encoder ran once per call).",
)
FLAGS = flags.FLAGS
for _name in ("batch_sizes", "target_lens", "iterations"):
    flags.register_validator(
        _name,
        lambda values: all(v.isdigit() and int(v) >= 1 for v in values),
        message=f"--{_name} takes a comma-separated list of ints >= 1",
    )


def main(argv):
    del argv
    cfg = ModelConfig(
        vocab_size=FLAGS.vocab_size,
        d_model=FLAGS.d_model,
        num_heads=FLAGS.num_heads,
        num_layers=FLAGS.num_layers,
        d_ff=FLAGS.d_ff,
        dtype=FLAGS.dtype,
        architecture=FLAGS.architecture,
    )
    # The decoders table's entries; mask-predict timed on the CMLM mask asked for.
    caches = [None] + [False] * architecture_of(cfg).encodes_prompt
    specs = [decoders.DECODERS["ar_cache"]] + [
        dataclasses.replace(
            decoders.non_ar.mask_predict_spec(int(K), use_cache=use_cache),
            timing_mask=FLAGS.nar_mask,
        )
        for K in FLAGS.iterations
        for use_cache in caches
    ]
    shape = dict(
        num_layers=cfg.num_layers,
        d_model=cfg.d_model,
        d_ff=cfg.d_ff,
        nar_mask=FLAGS.nar_mask,
        dtype=FLAGS.dtype,
        architecture=FLAGS.architecture,
    )
    device = f"{jax.devices()[0].platform}:{jax.devices()[0].device_kind}"
    for batch_size in map(int, FLAGS.batch_sizes):
        for target_len in map(int, FLAGS.target_lens):
            # A seq2seq prompt: BOS, a source as long as the target, SEP.
            point = (batch_size, target_len + 2, target_len)
            for row in time_decoders(
                cfg,
                specs,
                [point],
                repeats=FLAGS.repeats,
                no_cache_max_length=0,
                log=lambda _: None,
            ):
                row = {k: round(v, 5) if isinstance(v, float) else v for k, v in row.items()}
                print(json.dumps({**row, **shape, "device": device}), flush=True)


if __name__ == "__main__":
    launch.run(main)
