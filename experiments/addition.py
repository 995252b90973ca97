"""Addition with a predicted length: a CMLM model with a length head against a causal AR model.

Task: addition (data/synthetic.py): two base-10 operands of 2-6 digits, whose sum has n or n + 1
digits, so a non-AR model must predict the target length before it fills it in. Variants: `ar`
(causal, teacher forcing) and `nar` (CMLM, mask `prefix_full`, with a length head). Eval scores
mask-predict with the reference (oracle) length beside the predicted one, at a length beam of 1
and 3.

Command (run times measured 2026-11-26 on the 2-core CPU, as addition_ar and addition_nar of
experiments/ar_vs_nar.py):
  python train.py --config=experiments/addition.py --workdir=runs/addition --variant=ar  # 44 s
  python train.py --config=experiments/addition.py --workdir=runs/addition --variant=nar # 1.5 min
  python eval.py --workdir=runs/addition

Measured 2026-11-26 on the 2-core CPU, seed 0, when this study lived in experiments/ar_vs_nar.py
(variants addition_ar, addition_nar) with the same settings. 256 held-out prompts: AR (cache)
63.7% exact match after 1000 steps (not yet learnt); the CMLM model 38.7% at every K with the
reference length. Its length head predicts the reference length of 100.0% of prompts, so the
predicted-length decode with a beam of 1 is the oracle one (38.7%, K=1 and K=4); a beam of 3
drops to 21.9% (K=4): this weak model's mean token log-probability prefers wrong lengths.
"""

import ml_collections

from plan import base_config


def get_config() -> ml_collections.ConfigDict:
    """Variants ar (causal, teacher forcing) and nar (prefix_full, masked, a length head)."""
    config = base_config()
    config.name = "addition"
    config.seeds = (0,)
    config.model.update(num_layers=2, d_model=128, num_heads=4, d_ff=512)
    # seq_len 0: the smallest that fits the longest sum.
    config.data.update(task="addition", num_symbols=10, min_len=2, max_len=6, seq_len=0)
    config.train.update(
        batch_size=64,
        num_steps=1000,
        learning_rate=1e-3,
        warmup_steps=100,
        log_every=100,
        eval_every=500,
        checkpoint_every=500,
    )
    config.eval.update(num_examples=256, batch_size=64)
    config.eval.speed.update(
        decoders=("ar_cache", "mask_predict_k1", "mask_predict_k4"),
        lengths=(64, 128, 256),
        batch_size=64,
        throughput_length=128,
    )
    config.variants.ar = {
        "model": {"attention_mask_kind": "causal"},
        "train": {"objective": "teacher_forcing"},
    }
    # The CMLM model predicts its target length with a length head; eval scores it with the
    # predicted length beside the oracle one.
    config.variants.nar = {
        "model": {"attention_mask_kind": "prefix_full", "length_head": True},
        "train": {"objective": "masked"},
        "eval": {"nar": {"ar_variant": "ar"}},
    }
    return config
