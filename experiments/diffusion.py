"""Diffusion language models: AR, block diffusion (BD3-LM) and masked diffusion (MDLM) on bytes.

Purpose: the continuum between AR and non-AR that the seed's mask opens. One byte-level
decoder shape, the same data, steps and optimizer for every variant; only the self-attention
mask and the objective change:
- ar: causal mask, teacher forcing (exact NLL);
- bd3_block4, bd3_block16: `block_causal` with blocks of 4 and 16 bytes, the diffusion
  objective (BD3-LM, Arriola et al. 2025): blocks left to right, each denoised in parallel given
  the clean blocks before it;
- mdlm: `full` mask, the diffusion objective (MDLM, Sahoo et al. 2024): one block.
A block of 1 would be `ar` and one block is `mdlm` (tests/test_block_causal.py checks both,
bitwise). The likelihood evaluator gives bits per byte: exact for ar, an upper bound (the ELBO)
for the diffusion variants. Samples (64 held-out rows' oracle lengths) are scored without a
reference: their NLL under the `ar` model (generative NLL) and their unigram entropy.

Data: the English side of bible/en-es (data/bible.py), byte-level, 64-byte windows of verses
(a shorter verse is taken whole and ends with EOS), held-out books for the test split.
Offline, from Debian's package index:
  sudo apt-get install sword-text-web sword-text-sparv sword-text-kjv
  python scripts/prepare_data.py --name=bible/en-es

Commands:
  python train.py --config=experiments/diffusion.py --workdir=runs/diffusion
  python eval.py --workdir=runs/diffusion
"""

import ml_collections

from plan import base_config

# A length head scores each row's length, so a diffusion bound covers the tokens AR's NLL does
# (the row's end included); the samplers are given the reference lengths all the same.
LENGTH = {"length_head": True}
DECODERS = (
    "ar_sample",
    "diffusion_t2",
    "diffusion_t8",
    "diffusion_t32",
    "diffusion_conf_t8",
)


def get_config() -> ml_collections.ConfigDict:
    """Variants ar, bd3_block4, bd3_block16 and mdlm: 4 layers, d_model 128, 64-byte rows."""
    config = base_config()
    config.name = "diffusion"
    config.seeds = (0,)
    config.model.update(num_layers=4, d_model=128, num_heads=4, d_ff=512)
    config.data.update(
        task="tfds_text",
        tfds_name="bible/en-es",
        text_key="en",
        train_split="train",
        eval_split="test",
        seq_len=64,
    )
    config.train.update(
        batch_size=32,
        num_steps=1500,
        learning_rate=2e-3,
        warmup_steps=100,
        log_every=100,
        eval_every=500,
        checkpoint_every=500,
    )
    config.eval.update(
        num_examples=64,
        batch_size=32,
        num_samples=3,
        decoders=DECODERS,
        leakage_examples=8,
        dependency_examples=1,
        dependency_max_len=48,
        random_floor_examples=64,
    )
    config.eval.diffusion.ar_variant = "ar"
    config.eval.speed.update(
        variants=("bd3_block4",),
        decoders=("ar_cache", "diffusion_t2", "diffusion_t8", "diffusion_conf_t8"),
        lengths=(64,),
        prompt_len=1,
        batch_size=64,
        throughput_length=64,
        no_cache_max_length=64,
        train_seq_len=64,
    )
    config.variants.ar = {
        "model": {"attention_mask_kind": "causal"},
        "train": {"objective": "teacher_forcing"},
    }
    for size in (4, 16):
        config.variants[f"bd3_block{size}"] = {
            "model": {"attention_mask_kind": "block_causal", "block_size": size, **LENGTH},
            "train": {"objective": "diffusion"},
        }
    config.variants.mdlm = {
        "model": {"attention_mask_kind": "full", **LENGTH},
        "train": {"objective": "diffusion"},
    }
    return config
