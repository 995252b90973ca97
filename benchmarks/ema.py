"""The EMA of the params against the params themselves, on one trained run:
python -m benchmarks.ema --run=RUN_DIR [--t_samples=16].

MDLM and BD3-LM evaluate the EMA of their params (decay 0.9999, training/ema.py). A run trained
with `train.ema_decay` keeps both in each checkpoint, and the EMA changes no update, so one run
gives both sides on the same trajectory: this prints the held-out bits per token (the
likelihood evaluator's: exact for AR, the ELBO bound for diffusion, on the run's eval rows and
keys) of the params and of their EMA at every kept checkpoint, and their paired difference
(row by row, same keys) ± its sem.

Measured once (2026-12-07, this 2-core CPU), on experiments/diffusion.py's MDLM at its budget
with MDLM's decay:
  python train.py --config=experiments/diffusion.py --workdir=/tmp/ema/runs --variant=mdlm \
      --seed=0 --config.train.ema_decay=0.9999
      # 973 s (1,400 steps), beside a translation training and benchmarks.diffusion_cache
  python -m benchmarks.ema --run=/tmp/ema/runs/mdlm/seed_0                            # 35 s
64 held-out rows, 16 times a row; bits per byte, params against EMA, and EMA - params (paired):
  step   233: 4.443 vs 4.415, -0.028 ± 0.006     step   932: 3.718 vs 3.740, +0.022 ± 0.007
  step   466: 4.237 vs 4.228, -0.009 ± 0.010     step 1,165: 3.597 vs 3.616, +0.018 ± 0.004
  step   699: 3.931 vs 3.961, +0.030 ± 0.007     step 1,400: 3.561 vs 3.568, +0.007 ± 0.003
At this budget the EMA helps only at the start, then lags a model still improving fast (its
warm-up averages about the last n / 9 updates); at the end it is within 0.01 bits of the params.
One run, one seed: the study's variants keep it off.
"""

import launch

launch.configure_xla_cpu()  # Before JAX starts its backend.

import json  # noqa: E402
import math  # noqa: E402

import numpy as np  # noqa: E402
from absl import flags  # noqa: E402

from data import make_task  # noqa: E402
from evaluation import checkpoint_history, likelihood  # noqa: E402
from evaluation.report.paired import paired_ratio  # noqa: E402
from evaluation.scoring import eval_batches  # noqa: E402
from objectives import objective_of  # noqa: E402
from training import checkpoints  # noqa: E402

_RUN = flags.DEFINE_string("run", None, "A run folder (<workdir>/<variant>/seed_<n>).")
_T_SAMPLES = flags.DEFINE_integer("t_samples", 16, "Times per row of a diffusion bound.")
flags.mark_flag_as_required("run")


def main(argv: list[str]) -> None:
    del argv
    run = _RUN.value
    config, _ = checkpoints.load_config(run)
    if not config.train.ema_decay:
        raise ValueError(f"{run} kept no EMA of its params (train.ema_decay=0): nothing to compare")
    task = make_task(config.data)
    objective = objective_of(config.train.objective)
    settings = config.eval

    def bits(model):
        batches = eval_batches(task, settings.num_examples, settings.batch_size)
        return likelihood.row_nats(model, objective, batches, config.seed, _T_SAMPLES.value)

    pairs = zip(
        checkpoint_history.models(run, ema=False), checkpoint_history.models(run), strict=True
    )
    for (step, params_model), (_, ema_model) in pairs:
        params_nats, tokens = bits(params_model)
        ema_nats, _ = bits(ema_model)
        params_bits = likelihood.bits_per_token(params_nats, tokens)
        ema_bits = likelihood.bits_per_token(ema_nats, tokens)
        difference, sem = paired_ratio(
            np.stack([ema_nats, tokens], axis=1), np.stack([params_nats, tokens], axis=1)
        )
        print(json.dumps({
            "measurement": "ema/bits_per_token", "run": run, "step": step,
            "ema_decay": config.train.ema_decay, "rows": len(tokens),
            "params": [round(v, 4) for v in params_bits], "ema": [round(v, 4) for v in ema_bits],
            "ema_minus_params_bits": [
                round(difference / math.log(2.0), 4), round(sem / math.log(2.0), 4)
            ],
        }), flush=True)  # fmt: skip


if __name__ == "__main__":
    launch.run(main)
