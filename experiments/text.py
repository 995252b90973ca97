"""Causal vs full mask on real text: byte-level language modelling of tiny_shakespeare (TFDS).

Purpose: the leak on natural data. A full-mask LM reaches a teacher-forced loss far below any
honest model's (it reads the next byte), but its honest loss (each byte predicted from its prefix
alone) is worse than the causal model's, and sampling from it fails.

Needs the prepared dataset (once, on a machine with internet; TensorFlow only for this step):
  pip install -r requirements-data.txt
  python scripts/prepare_data.py --name=tiny_shakespeare --data_dir=$HOME/tensorflow_datasets
then copy that folder here (data.data_dir='' reads $TFDS_DATA_DIR or ~/tensorflow_datasets).

Command:
  python train.py --config=experiments/text.py --workdir=runs/text [--config.data.data_dir=DIR]
  python eval.py --workdir=runs/text

Expected (estimated, not yet measured: the data cannot be prepared offline): causal: teacher-forced
= honest loss, about 1.6-1.8 nats/byte after 3000 steps; full: teacher-forced loss < 0.3 but honest
loss > 3; perturbation 0.0 vs > 1; random-byte loss of full below ln(256) = 5.55 (proof of
leakage). No generation table: text has no prompt. Run time on 2 CPU cores: ~8 min of training per
variant, ~3 min of evaluation.
"""

import ml_collections

from experiments.base import base_config


def get_config() -> ml_collections.ConfigDict:
    """A 4-layer, d_model 256 byte-level LM on 128-byte windows, causal vs full."""
    config = base_config()
    config.name = "text"
    config.model.update(num_layers=4, d_model=256, num_heads=4, d_ff=1024)
    config.data.update(task="tfds_text", tfds_name="tiny_shakespeare", seq_len=128, max_len=64)
    config.train.update(
        batch_size=32, num_steps=3000, learning_rate=1e-3, warmup_steps=200, eval_every=500
    )
    config.eval.update(
        num_examples=64,
        batch_size=32,
        leakage_examples=8,
        dependency_examples=2,
        dependency_max_len=48,
        random_floor_examples=64,
    )
    config.eval.speed.update(
        variants=("causal",), lengths=(64, 128, 256, 512), no_cache_max_length=256
    )
    config.variants.causal = {"model": {"attention_mask_kind": "causal"}}
    config.variants.full = {"model": {"attention_mask_kind": "full"}}
    return config
