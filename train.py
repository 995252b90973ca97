"""Trains an experiment: python train.py --config=experiments/<name>.py --workdir=runs/<name>.

Flags: --variant=NAME trains one variant, --seed=N one of its seeds (a study's long runs go one
command at a time); --config.train.num_steps=5 (any key) overrides the
config, and a key that does not exist fails at once; --overwrite wipes the run folders whose
config differs, after every check has passed. Rerunning the same command resumes from the
latest checkpoints. SIGTERM or Ctrl-C saves, then stops; a second Ctrl-C stops at once. Every
error ends in one line (--verbose shows the traceback). Several processes (multi-host): see
training/processes.py:initialize_distributed and docs/training.md.
"""

import launch

launch.configure_xla_cpu()  # Before JAX starts its backend: XLA reads its flags once.

import sys  # noqa: E402

from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

import plan  # noqa: E402
from training import loop, processes  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment file, e.g. experiments/tiny.py.", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Output folder, e.g. runs/tiny.")
_VARIANT = flags.DEFINE_string("variant", None, "Train only this variant (default: all).")
_SEED = flags.DEFINE_integer(
    "seed", None, "Train only this seed (default: each of the variant's seeds)."
)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Wipe run folders whose config differs.")
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed",
    False,
    "Call jax.distributed.initialize() with cluster auto-detection (TPU pods, SLURM, Open MPI). "
    "Setting JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID does it explicitly.",
)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv: list[str]) -> None:
    del argv  # launch.run refuses positional arguments.
    processes.initialize_distributed(auto_detect=_DISTRIBUTED.value)
    config = _CONFIG.value
    plans = plan.make_plans(config, _VARIANT.value, _SEED.value)
    flag_values = config_flags.get_override_values(flags.FLAGS["config"])
    for name in dict.fromkeys(p.variant for p in plans):
        for key, own in plan.overridden_flags(config, name, flag_values):
            print(
                f"note: variant {name!r} sets {key}={own!r} itself, which wins over "
                f"--config.{key}={flag_values[key]!r}",
                file=sys.stderr,
            )
    results = loop.train_experiment(
        plans, _WORKDIR.value, plan.experiment_json(config), overwrite=_OVERWRITE.value
    )
    for result in results:
        state = f"stopped by {result.stopped_by}" if result.stopped_by else "finished"
        loss = result.last_train.get("loss")
        # No step ran when the run had finished before: nothing new to report of its loss.
        tail = f", last train loss {loss}" if loss is not None else " (already trained before)"
        print(f"{result.run_dir}: {state} at step {result.step}{tail}")
    if results and results[-1].stopped_by == "Ctrl-C":
        sys.exit(130)  # Like any program Ctrl-C stops: `train.py && eval.py` stops here too.


if __name__ == "__main__":
    launch.run(main)
