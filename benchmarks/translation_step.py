"""The translation train step's useful tokens per second, before and after the split layout:
python -m benchmarks.translation_step [--d_model=192 --steps=24 --rounds=3].

Useful tokens are the ones a stack exists for: the source tokens (`BOS source SEP`) in the
encoder and the decoder's tokens (`SEP target`) in the decoder; padding, the encoder's work on
target positions and the decoder's on source positions are waste. Both train the same model
(experiments/translate.py's shape, teacher_forcing) on the Bible en-es data
(scripts/prepare_data.py --name=bible/en-es), `--steps` steps each, alternating, after every
batch shape has compiled; each round's ratio is printed, then the min, median and max.

- `row` (before 2026-12-07): batches of `--batch_size` pairs as `BOS source SEP target EOS` rows
  of seq_len 96 (longer pairs redrawn); both stacks and the LM head run over every position.
- `split`: batches of up to `--batch_tokens` positions from length buckets
  (data/token_batches.py; seq_len 192, so almost no pair is cut), the source and the target
  apart (`data.batching.split_seq2seq`): the encoder over the source, the decoder and LM head
  over the target.

Measured (2026-12-07, this 2-core CPU, fp32, idle but for this command; `python -m
benchmarks.translation_step`, defaults: d_model 192, 24 steps a layout and round, 3 rounds,
4 min 5 s in all): `row` 2,007 useful tokens a step, 32.7% of its positions, 77.4 GFLOP a step
(the model's count); `split` 1,981 useful tokens a step, 85.6% of its positions, 27.9 GFLOP, in 6
bucket shapes (72 s to compile them, against 40 s for the one row shape). Useful tokens/s:
`row` 1,532 / 1,644 / 1,576 and `split` 4,694 / 4,672 / 4,053 in the three rounds: **split over
row 2.57x min, 2.84x median, 3.07x max** (the target: >= 2.5x).
"""

import launch

launch.configure_xla_cpu()  # Before JAX starts its backend.

import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

from absl import flags  # noqa: E402

import data  # noqa: E402
from benchmarks.steps import run_steps  # noqa: E402
from data import batching  # noqa: E402
from experiments import translate  # noqa: E402
from model import ModelConfig, architecture_of  # noqa: E402
from sections import default_train_config  # noqa: E402
from training.step import Hyperparams, bind_train_step, init_train_state  # noqa: E402

_D_MODEL = flags.DEFINE_integer("d_model", translate.MODEL["d_model"], "Model width.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 32, "Pairs per `row` step.", lower_bound=1)
_BATCH_TOKENS = flags.DEFINE_integer(
    "batch_tokens", 2560, "Positions per `split` step (both stacks).", lower_bound=64
)
_STEPS = flags.DEFINE_integer("steps", 24, "Steps per layout and round.", lower_bound=1)
_ROUNDS = flags.DEFINE_integer("rounds", 3, "Alternating rounds.", lower_bound=1)


def useful_tokens(row_batch: dict) -> int:
    """Source tokens (`BOS source SEP`) plus decoder tokens (`SEP target`) of a one-row batch."""
    prefix, lengths = row_batch["prefix_lengths"], row_batch["lengths"]
    return int(prefix.sum() + (lengths - prefix + 1).sum())


def main(argv: list[str]) -> None:
    del argv
    args = flags.FLAGS
    load = _load()  # Before this command's own work.
    row_task = data.make_task(data.DataConfig(**translate.DATA))
    split_task = data.make_task(
        data.DataConfig(**dict(translate.DATA, seq_len=192, batch_tokens=args.batch_tokens))
    )
    d = args.d_model
    cfg = ModelConfig(
        **dict(translate.MODEL, d_model=d, d_ff=4 * d),
        vocab_size=row_task.vocab_size, max_len=192, dropout_rate=0.1,
    )  # fmt: skip
    hparams = Hyperparams.from_config(default_train_config())
    steps = range(args.steps)
    rows = {
        "row": [row_task.batch(step, args.batch_size) for step in steps],
        "split": [split_task.batch(step, 0) for step in steps],
    }
    layouts = {"row": rows["row"], "split": [batching.split_seq2seq(b) for b in rows["split"]]}
    useful = {name: sum(useful_tokens(b) for b in batches) for name, batches in rows.items()}
    arch = architecture_of(cfg)
    states, fns = {}, {}
    for name, batches in layouts.items():
        graphdef, params, opt_state = init_train_state(cfg, hparams, 0)
        fns[name] = bind_train_step(graphdef, "teacher_forcing")
        states[name] = [params, opt_state]
        start = time.perf_counter()
        run_steps(fns[name], states[name], batches, hparams)  # Compiles every shape.
        positions = sum(b["inputs"].size + b.get("source", b["inputs"]).size for b in batches)
        print(json.dumps({
            "measurement": f"translation_step/{name}/warm_up",
            "seconds": round(time.perf_counter() - start, 2),
            "useful_tokens_per_step": round(useful[name] / len(batches)),
            "useful_share_of_positions": round(useful[name] / positions, 3),
            "model_gflop_per_step": round(
                sum(arch.train_flops(cfg, b) for b in batches) / len(batches) / 1e9, 2
            ),
            "shapes": len({b["inputs"].shape for b in batches}),
        }), flush=True)  # fmt: skip
    ratios = []
    for round_index in range(args.rounds):
        seconds = {
            name: run_steps(fns[name], states[name], b, hparams) for name, b in layouts.items()
        }
        per_s = {name: useful[name] / s for name, s in seconds.items()}
        ratios.append(per_s["split"] / per_s["row"])
        print(json.dumps({
            "measurement": "translation_step/round", "round": round_index,
            **{f"{name}_useful_tokens_per_s": round(v, 1) for name, v in per_s.items()},
            "ratio_split_over_row": round(ratios[-1], 3),
        }), flush=True)  # fmt: skip
    print(json.dumps({
        "measurement": "translation_step/ratio_split_over_row",
        "d_model": d, "batch_size": args.batch_size, "batch_tokens": args.batch_tokens,
        "steps": args.steps, "min": round(min(ratios), 3),
        "median": round(statistics.median(ratios), 3), "max": round(max(ratios), 3),
        "load_1min_before": round(load, 2),
    }), flush=True)  # fmt: skip


def _load() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


if __name__ == "__main__":
    launch.run(main)
