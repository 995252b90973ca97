"""Mask-predict vs AR (KV cache) speed: one JSON line per (decoder, batch size, target length).

  python -m benchmarks.nar                      # experiments/ar_vs_nar.py's model shape
  python -m benchmarks.nar --batch_sizes=1 --target_lens=128 --iterations=1,2,4,8

Untrained models (speed does not depend on the weights): prompt = BOS, a source as long as the
target, SEP; AR generates target_len tokens, mask-predict fills target_len MASKs in K passes.
latency_s is the median of --repeats runs; tokens_per_s = batch_size * target_len / latency_s;
compile_s is the first call's extra time (mask-predict compiles once for every K).
"""

import launch

launch.configure_xla_cpu()

import json  # noqa: E402

import jax  # noqa: E402
from absl import app, flags  # noqa: E402

from evaluation.nar import speed_records  # noqa: E402
from model import ModelConfig  # noqa: E402

flags.DEFINE_integer("num_layers", 2, "Decoder layers.")
flags.DEFINE_integer("d_model", 128, "Model width.")
flags.DEFINE_integer("num_heads", 4, "Attention heads.")
flags.DEFINE_integer("d_ff", 512, "MLP width.")
flags.DEFINE_integer("vocab_size", 21, "Vocabulary size (16 symbols + 5 specials).")
flags.DEFINE_list("batch_sizes", ["1", "64"], "Rows decoded together.")
flags.DEFINE_list("target_lens", ["32", "64", "128", "256"], "Target tokens per row.")
flags.DEFINE_list("iterations", ["1", "4"], "Mask-predict passes K.")
flags.DEFINE_integer("repeats", 5, "Timed runs per decoder; the median is reported.")
flags.DEFINE_enum(
    "nar_mask",
    "prefix_full",
    ["prefix_full", "full"],
    "The CMLM model's mask: prefix_full encodes the prompt once (KV cache), full every pass.",
)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    cfg = ModelConfig(
        vocab_size=FLAGS.vocab_size,
        d_model=FLAGS.d_model,
        num_heads=FLAGS.num_heads,
        num_layers=FLAGS.num_layers,
        d_ff=FLAGS.d_ff,
        attention_mask_kind=FLAGS.nar_mask,
    )
    shape = dict(
        num_layers=cfg.num_layers, d_model=cfg.d_model, d_ff=cfg.d_ff, nar_mask=FLAGS.nar_mask
    )
    device = f"{jax.devices()[0].platform}:{jax.devices()[0].device_kind}"
    for batch_size in map(int, FLAGS.batch_sizes):
        for target_len in map(int, FLAGS.target_lens):
            for record in speed_records(
                cfg,
                batch_sizes=(batch_size,),
                target_lens=(target_len,),
                iterations=tuple(map(int, FLAGS.iterations)),
                repeats=FLAGS.repeats,
            ):
                record = {k: round(v, 5) if isinstance(v, float) else v for k, v in record.items()}
                print(json.dumps({**record, **shape, "device": device}), flush=True)


if __name__ == "__main__":
    app.run(main)
