"""Tiny smoke experiment: a 2-layer, d_model 32 decoder learns a short copy task.

Purpose: exercise the whole pipeline (train, checkpoint, resume, eval) in seconds; the tests use
it. Not a result: 40 steps are too few to learn the task.

Command:
  python train.py --config=experiments/tiny.py --workdir=runs/tiny
  python eval.py --workdir=runs/tiny

Expected: the train loss falls from ~3.0 (ln 21 is 3.04) to ~1.45 (causal) and ~1.15 (full, which
sees the token it predicts) by step 40; eval loss ~1.4 and ~1.05. Run time: 10-30 s per variant
on 2 CPU cores, almost all of it compilation. These are approximate: read off runs of the first
command on the 2-core CPU on 2026-11-24 (commits 010ed30 and 4c93fa7), whose logs were not kept.
"""

import ml_collections

from plan import base_config


def get_config() -> ml_collections.ConfigDict:
    """Causal vs full mask on copy, lengths 2-6, 40 steps."""
    config = base_config()
    config.name = "tiny"
    config.seeds = (0,)
    config.model.update(num_layers=2, d_model=32, num_heads=2, d_ff=64)
    config.data.update(task="copy", num_symbols=16, min_len=2, max_len=6)
    config.train.update(
        batch_size=16,
        num_steps=40,
        learning_rate=3e-3,
        warmup_steps=5,
        log_every=10,
        eval_every=20,
        eval_batches=2,
        checkpoint_every=10,
        keep_checkpoints=2,
    )
    config.eval.update(num_examples=32, batch_size=16)
    config.variants.causal = {"model": {"attention_mask_kind": "causal"}}
    config.variants.full = {"model": {"attention_mask_kind": "full"}}
    return config
