"""Speed: AR sampling with and without the KV cache from 64 to 1024 tokens, and training tokens/s
of teacher forcing vs sequential (free-running) training.

Purpose: the cost side of the comparison. Decode and train cost depend on shapes, not on weight
values, so the models are trained for a few steps only (enough for eval.py to find checkpoints;
metrics.jsonl also logs each objective's training tokens/s) and the report times a 4-layer,
d_model 256 decoder.

Command:
  python train.py --config=experiments/speed.py --workdir=runs/speed
  python eval.py --workdir=runs/speed

Expected: per generated token, the cached sampler's cost grows slowly with length while the no-
cache sampler's grows about linearly (it recomputes the whole prefix each step), so the cache's
speed-up grows with length. At this depth and width, batch 1 and 1024 tokens, `python -m
benchmarks.sampling --batch_size=1 --prompt_len=16 --new_tokens=1008 --repeats=3` measured 130x
on the 2-core CPU (2026-11-24, benchmarks/sampling.py; the 56x once quoted here was the same
command before the cache grew in phases). Teacher forcing trains more tokens/s than sequential
training at length 64, but short of the 10x the issue asks for on 2 CPU cores: the recorded ratios
are 3.8-6.4x at the demo's shape (experiments/demo.py) and 4.9x at benchmarks/train_step.py's
(6 layers, d_model 512); this experiment's own ratio has no recorded run. Run time (2-core CPU,
2026-11-24, the two commands above with --workdir=/tmp/speedrun): about 1 min of training; the
evaluation was stopped unfinished after 15 min, most of it the no-cache sampler (8 min at 1024
tokens, batch 1, then batch 64 x 256 tokens).
"""

import ml_collections

from plan import base_config


def get_config() -> ml_collections.ConfigDict:
    """A causal model trained with each next-token objective for 20 steps, then timed."""
    config = base_config()
    config.name = "speed"
    config.model.update(num_layers=4, d_model=256, num_heads=4, d_ff=1024)
    config.data.update(task="copy", num_symbols=16, min_len=31, max_len=31)  # seq_len 64.
    config.train.update(
        batch_size=8,
        num_steps=20,
        warmup_steps=2,
        log_every=5,
        eval_every=0,
        checkpoint_every=20,
        keep_checkpoints=1,
    )
    config.eval.update(
        num_examples=32,
        batch_size=32,
        leakage_examples=8,
        dependency_examples=1,
        random_floor_examples=32,
    )
    config.eval.speed.update(
        variants=("teacher_forcing",),
        lengths=(64, 128, 256, 512, 1024),
        no_cache_max_length=1024,
        batch_size=64,
        throughput_length=256,
        repeats=3,
        train_seq_len=64,
        train_batch_size=8,
        train_steps=5,
    )
    config.variants.teacher_forcing = {"train": {"objective": "teacher_forcing"}}
    config.variants.sequential = {"train": {"objective": "sequential"}}
    return config
