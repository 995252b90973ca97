"""CTC decoding on a trained encoder-decoder, split against whole rows, alternating in one run:
python -m benchmarks.ctc_split [--run=runs/translate/ctc_distilled/seed_0 --rounds=5].

`split` (model/ctc.py, the default): the encoder over the prompts alone, the decoder and LM head
over `SEP canvas` alone, as CTC trains; `rows`: both stacks over [prompt, canvas] rows (the
path before 2026-12-07). The first `--batch_size` held-out prompts of the run's task, at batch 1
(the first prompt) and at `--batch_size`; each round times both once, the order alternating; a
line per batch size gives the median milliseconds, the ratio, and whether the tokens agree.

Measured 2026-12-07 on the 2-core CPU, the trained `ctc_distilled` (seed 0), beside a training
run (so both sides slower than alone, side by side): batch 1 split 18.2 ms against rows 30.9
(1.7x), batch 64 842 against 2,152 ms (2.55x), the same tokens, widest prompt 75 tokens.
"""

import launch

launch.configure_xla_cpu()  # Before JAX starts its backend.

import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from absl import flags  # noqa: E402

import data  # noqa: E402
from data import vocab  # noqa: E402
from evaluation import scoring  # noqa: E402
from model.ctc import ctc_generate  # noqa: E402
from objectives import objective_of  # noqa: E402
from training import checkpoints  # noqa: E402

_RUN = flags.DEFINE_string("run", "runs/translate/ctc_distilled/seed_0", "A trained CTC run.")
_BATCH = flags.DEFINE_integer("batch_size", 64, "The large batch.", lower_bound=1)
_ROUNDS = flags.DEFINE_integer("rounds", 5, "Alternating rounds.", lower_bound=1)


def main(argv: list[str]) -> None:
    del argv
    model, _, plan, _ = checkpoints.load_params(_RUN.value)
    ratio = objective_of(plan.train.objective).canvas_ratio
    if not ratio:
        raise ValueError(
            f"--run={_RUN.value} is no CTC run (train.objective={plan.train.objective!r})"
        )
    batch = data.make_task(plan.data).batch(0, _BATCH.value, split="eval")
    P = int(batch["prefix_lengths"].max())
    prompts = scoring.prompts_of(batch, P, 128)
    kwargs = dict(ratio=ratio, max_new_tokens=128, blank_id=vocab.MASK, eos_id=vocab.EOS)

    def run(split: bool, rows: slice) -> np.ndarray:
        out = ctc_generate(
            model, prompts.prompts_BxP[rows], prompts.prompt_lengths_B[rows], split=split, **kwargs
        )
        return np.asarray(out.tokens_BxL)

    for rows in (slice(0, 1), slice(0, _BATCH.value)):
        same = np.array_equal(run(True, rows), run(False, rows))  # Also compiles both.
        times = {True: [], False: []}
        for index in range(_ROUNDS.value):
            for split in (True, False) if index % 2 == 0 else (False, True):
                start = time.perf_counter()
                run(split, rows)
                times[split].append(time.perf_counter() - start)
        split_s, rows_s = statistics.median(times[True]), statistics.median(times[False])
        print(json.dumps({
            "batch_size": rows.stop, "split_ms": round(1e3 * split_s, 1),
            "rows_ms": round(1e3 * rows_s, 1), "rows_over_split": round(rows_s / split_s, 2),
            "same_tokens": same, "widest_prompt": P,
        }))  # fmt: skip


if __name__ == "__main__":
    launch.run(main)
