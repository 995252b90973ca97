"""Exact parallel decoding on a trained target and draft: one JSON line per (decoder, batch size).

  python train.py --config=experiments/ar_vs_nar.py --workdir=runs/ar_vs_nar \
      --variant=reverse_ar        # then --variant=reverse_draft and --variant=reverse_nar
  python -m benchmarks.decoders   # --workdir=runs/ar_vs_nar --batch_sizes=1,8

Acceptance on random weights means nothing, so this times the trained models of an experiment:
the target (`--target`, an AR variant), a small AR draft (`--draft`) and a CMLM draft (`--cmlm`),
each decoder from the decoders table (evaluation/decoders.py) on the first held-out prompts of the
target's task. tokens_per_s counts the generated tokens (EOS included) over the median of
--repeats calls; target_passes_per_token and acceptance come from the decoder's own counts, and
equals_greedy says whether every row's tokens equal greedy AR's (they must).

Measured (2026-11-26, the 2-core CPU, after training `reverse_ar`, `reverse_draft` and `reverse_nar`
of experiments/ar_vs_nar.py; three runs, median and range; every decoder's tokens equalled greedy
AR's):

| decoder | tokens/s, batch 1 | tokens/s, batch 8 | target passes/token (1 / 8) | accepted (1 / 8) |
| --- | --- | --- | --- | --- |
| AR (cache) | 1,578 (1,132-1,601) | 9,888 (9,234-11,603) | 1 / 1 | - |
| Jacobi (block 4) | 1,287 (955-1,377) | 8,218 (7,162-9,513) | 0.60 / 0.53 | 50% / 42% |
| speculative (AR draft, 4) | 570 (570-965) | 6,280 (5,585-7,856) | 0.40 / 0.33 | 100% / 86% |
| speculative (CMLM draft, 8) | 608 (579-785) | 5,004 (4,124-5,726) | 0.40 / 0.24 | 50% / 75% |

They cut the target's passes 2-4x, but at this size that buys no time on a CPU: a call's fixed
cost (about 1.5 ms of prefill, dispatch and Python for a 5-token row) dwarfs the 0.11 ms a decode
step of the 2-layer, d_model 128 target takes, and the draft's step costs about as much as the
target's. The report's quality table (eval.py, 256 held-out prompts) gives the same kind of
figures: 0.53, 0.33 and 0.26 target passes per token, 44%, 86% and 71% of drafts accepted.
"""

import launch

launch.configure_xla_cpu()  # Before JAX starts its backend.

import functools  # noqa: E402
import json  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
from absl import flags  # noqa: E402

import data  # noqa: E402
from evaluation import decoders, quality  # noqa: E402
from evaluation.speed import time_call  # noqa: E402
from training import checkpoints, run_folder  # noqa: E402

flags.DEFINE_string("workdir", "runs/ar_vs_nar", "The trained experiment.")
flags.DEFINE_string("target", "reverse_ar", "The AR variant decoded.")
flags.DEFINE_string("draft", "reverse_draft", "The small AR variant that drafts for it.")
flags.DEFINE_string("cmlm", "reverse_nar", "The CMLM variant that drafts for it.")
flags.DEFINE_integer("seed", 0, "The runs' seed.")
flags.DEFINE_list("batch_sizes", ["1", "8"], "Rows decoded together.")
flags.DEFINE_integer(
    "repeats", 5, "Timed calls per decoder; the median is reported.", lower_bound=1
)
FLAGS = flags.FLAGS

TIMED = (
    ("AR (cache)", None),
    ("Jacobi (block 4)", None),
    ("speculative (AR draft, 4)", "draft"),
    ("speculative (CMLM draft, 8)", "cmlm"),
)


def _load(variant: str):
    run = run_folder.run_dir(FLAGS.workdir, variant, FLAGS.seed)
    if not run_folder.checkpoint_steps(run):
        raise ValueError(
            f"{FLAGS.workdir} has no trained {variant!r} (seed {FLAGS.seed}): train it with python "
            f"train.py --config=<its experiment> --workdir={FLAGS.workdir} --variant={variant}"
        )
    model, _, config, _ = checkpoints.load_params(run)
    return model, config


def _prompts(config, model, batch_size: int) -> decoders.Prompts:
    """The task's first held-out prompts, with room for their references (as quality scores)."""
    task = data.make_task(config.data)
    batch = next(quality.eval_batches(task, batch_size, batch_size))
    P = int(batch["prefix_lengths"].max())
    longest = max(len(r) for r in quality.references(batch))
    return quality.prompts_of(batch, P, min(longest, model.cfg.max_len + 1 - P))


def main(argv):
    del argv
    target, config = _load(FLAGS.target)
    seconds = {"draft": _load(FLAGS.draft)[0], "cmlm": _load(FLAGS.cmlm)[0]}
    device = f"{jax.devices()[0].platform}:{jax.devices()[0].device_kind}"
    for batch_size in map(int, FLAGS.batch_sizes):
        prompts = _prompts(config, target, batch_size)
        greedy = None
        for name, second in TIMED:
            spec = decoders.DECODERS[name]
            models = decoders.Models(target, seconds[second] if second else None)
            decode = functools.partial(spec.decode, models, prompts)
            out = decode()
            compile_s, median_s = time_call(decode, FLAGS.repeats)
            generated = np.asarray(out.lengths_B) - prompts.prompt_lengths_B
            tokens = np.asarray(out.tokens_BxL)
            greedy = tokens if greedy is None else greedy
            row = {
                "decoder": name,
                "batch_size": batch_size,
                "tokens_per_s": round(float(generated.sum()) / median_s, 1),
                "median_s": round(median_s, 5),
                "compile_s": round(compile_s, 2),
                "generated_tokens": int(generated.sum()),
                "equals_greedy": bool(np.array_equal(tokens, greedy)),
            }
            if hasattr(out, "target_passes_B"):
                row["target_passes_per_token"] = round(
                    float(np.sum(out.target_passes_B)) / float(generated.sum()), 3
                )
                drafted = float(np.sum(out.drafted_B))
                accepted = float(np.sum(out.accepted_B))
                row["acceptance"] = round(accepted / drafted, 3) if drafted else None
            print(json.dumps({**row, "target": FLAGS.target, "device": device}), flush=True)


if __name__ == "__main__":
    launch.run(main)
