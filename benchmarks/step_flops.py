"""A variant's train-step FLOPs as its objective counts them now, over its first training batches:
python -m benchmarks.step_flops --config=experiments/translate.py --variant=V [--batches=N].

Prints the mean FLOPs of a step (`Objective.step_flops`, what training logs as `flops`) and the
architecture's count of the same batches (one pass over each stack's width, the count before an
objective's own), and their ratio. Only shapes are read: nothing is trained or run. It corrects
the compute of a run whose log predates its objective's count, by that ratio (the batches of a
seeded pipeline are the same in every run of the variant).

Measured 2026-12-07 (this 2-core CPU, a few seconds each), for experiments/translate.py's runs
trained at 4d46afb, whose logs count every student as one pass over the target's width:
  python -m benchmarks.step_flops --config=experiments/translate.py --variant=ctc_distilled \
      --batches=2900      # 22.20 GFLOP a step as run, 13.69 logged: ratio 1.622 (the canvas)
and likewise, each at its study steps: glat_distilled 16.60 against 13.69 (1.212: its first
pass, the decoder alone, objectives/masked.py `glancing_train_flops`), mdlm_distilled 13.91
against 13.69 (1.016: its row reads one more token), cmlm_distilled 13.69 and ar 13.64 (1.000).
So at the study's
equal CPU budgets the runs cost, as run, AR 68.2 TFLOP (5000 steps), CMLM 68.5, MDLM 69.6, GLAT
66.4 (4000 steps) and CTC 64.4 (2900 steps): within 0.94-1.02x of AR's.
"""

import launch

launch.configure_xla_cpu()  # Before JAX starts its backend.

from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from data import make_task  # noqa: E402
from model import architecture_of  # noqa: E402
from objectives import objective_of  # noqa: E402
from plan import make_plan  # noqa: E402
from training.step import as_trained  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "The experiment's config file.")
_VARIANT = flags.DEFINE_string("variant", None, "The variant whose steps are counted.")
_BATCHES = flags.DEFINE_integer("batches", 300, "Training batches counted.", lower_bound=1)
flags.mark_flags_as_required(["config", "variant"])


def count(config, variant: str, batches: int) -> tuple[float, float]:
    """(mean FLOPs a step as the objective counts them, as the architecture counts one pass)."""
    plan = make_plan(config, variant, 0)
    task, arch = make_task(plan.data), architecture_of(plan.model)
    objective = objective_of(plan.train.objective)
    counted, one_pass = 0.0, 0.0
    for step in range(batches):
        batch = as_trained(plan.model, task.batch(step, plan.train.batch_size, split="train"))
        counted += objective.step_flops(arch, plan.model, batch)
        one_pass += arch.train_flops(plan.model, batch)
    return counted / batches, one_pass / batches


def main(argv):
    del argv
    counted, one_pass = count(_CONFIG.value, _VARIANT.value, _BATCHES.value)
    print(
        f"{_VARIANT.value}, {_BATCHES.value} batches: {counted / 1e9:.2f} GFLOP a step as its "
        f"objective counts it, {one_pass / 1e9:.2f} as one pass over the batch: ratio "
        f"{counted / one_pass:.3f}"
    )


if __name__ == "__main__":
    launch.run(main)
