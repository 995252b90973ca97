"""The seed's own example: an encoder-decoder translating English to Spanish (the Bible corpus).

Purpose: the seed's claim on real data. Its running example is an encoder-decoder translating a
sentence, whose decoder's masked self-attention makes teacher forcing honest. Three variants of
about the same parameter count (the report lists each count):
- enc_dec_causal: the seed's model, a bidirectional encoder and a causal decoder with
  cross-attention;
- enc_dec_full: the same with a full decoder mask. Teacher forcing leaks the next target token,
  so its teacher-forced loss collapses; it is decoded honestly without a cache and naively with
  one, and both fail;
- prefix_lm: one decoder stack, full over the source and causal over the target (7 layers against
  the encoder-decoder's 3 + 3, for the same parameters).

Data: verse-aligned World English Bible -> Reina-Valera 1909 (data/bible.py; public domain, from
Debian's package index), held-out books for the test split, and a joint SentencePiece vocabulary
of 4000 pieces trained on the training split. Scored with sacrebleu's corpus BLEU and chrF on
detokenised text, greedy and with beam search.

Command (once: `sudo apt-get install sword-text-web sword-text-sparv sword-text-kjv`):
  python scripts/prepare_data.py --name=bible/en-es
  python train.py --config=experiments/translate_masks.py --workdir=runs/translate_masks
  python eval.py --workdir=runs/translate_masks

Measured 2026-11-26 on the 2-core CPU, seed 0, by the three commands above (prepared data in
/tmp/tfds_main via --config.data.data_dir): training 33 min (enc_dec_causal 14 min while the CPU
was shared with other work, enc_dec_full 10 min, prefix_lm 9 min; 600 steps of 32 pairs, 0.7 of
an epoch), evaluation 11 min 20 s. 256 test verses (held-out books), sacrebleu BLEU/chrF ± the
bootstrap sem over sentences:

  variant         params     max|Δlogits|  loss TF / honest  greedy BLEU / chrF   beam 4 BLEU / chrF
  enc_dec_causal  4,676,133  0.0           4.07 / 4.07       3.4 ± 0.4 / 18.4     5.0 ± 0.5 / 18.8
  enc_dec_full    4,676,133  23.6          0.0024 / 12.2     0.0 / 0.0 (honest and naive cache)
  prefix_lm       4,674,789  0.0           4.26 / 4.26       2.4 ± 0.4 / 15.4     2.9 ± 0.3 / 15.8

The full decoder's dependency map puts 58% of its mass on later tokens, and its loss on uniform
random tokens, 7.03, is below ln(4000) = 8.29, which no honest model can beat. Decoded honestly it
emits EOS at once (its training never had to predict a token it could not read). The causal
encoder-decoder beats the same-size prefix-LM at equal steps. The models are small and barely
trained, so the absolute BLEU is low; the claim is the gap. Speed, same run (random weights of
enc_dec_causal's shape, 32-token source, tokens/s): at batch 1 and 64 / 96 total tokens, the
cross-attention cache 2,006 / 2,517, projecting the cross-attention K/V at every step 1,638 /
1,597, no cache 195 / 106; at batch 32 and 96 tokens, 7,907 / 5,123 / 193. Training 3,254 tokens/s.
"""

import ml_collections

from experiments.translate import DATA_2026_12_05 as DATA
from experiments.translate import MODEL_2026_12_05 as MODEL
from plan import base_config


def get_config() -> ml_collections.ConfigDict:
    """Three variants of ~4.6M parameters on bible/en-es, SentencePiece 4000, 96-token rows."""
    config = base_config()
    config.name = "translate_masks"
    config.model.update(MODEL)
    config.data.update(DATA)
    config.train.update(
        batch_size=32,
        num_steps=600,
        learning_rate=1.5e-3,
        warmup_steps=60,
        log_every=50,
        eval_every=150,
        checkpoint_every=150,
    )
    config.eval.update(
        num_examples=256,
        batch_size=64,
        num_samples=6,
        decoders=(
            "ar_cache",
            "beam4",
            "ar_no_cache",
            "ar_cache_naive",
        ),
        leakage_examples=8,
        # One map of 64 tokens (a short verse pair): exact, 64 x d_model forward passes.
        dependency_examples=1,
        dependency_max_len=64,
    )
    config.eval.speed.update(
        variants=("enc_dec_causal",),
        decoders=(
            "ar_cache",
            "ar_cache_no_cross_kv",
            "ar_no_cache",
        ),
        prompt_len=32,
        lengths=(64, 96),
        batch_size=32,
        throughput_length=96,
        no_cache_max_length=96,
        train_seq_len=96,
    )
    config.variants.enc_dec_causal = {"model": {"attention_mask_kind": "causal"}}
    config.variants.enc_dec_full = {"model": {"attention_mask_kind": "full"}}
    config.variants.prefix_lm = {
        "model": {"architecture": "decoder", "attention_mask_kind": "prefix", "num_layers": 7}
    }
    return config
