"""Trains an experiment: python train.py --config=experiments/<name>.py --workdir=runs/<name>.

Flags: --variant=NAME trains one variant; --config.train.num_steps=5 (any key) overrides the
config, and a key that does not exist fails at once; --overwrite wipes run folders whose config
differs. Rerunning the same command resumes from the latest checkpoints. Several processes
(multi-host): see training/mesh.py:initialize_distributed and the README.
"""

import launch

launch.configure_xla_cpu()  # Before JAX starts its backend: XLA reads its flags once.

import sys  # noqa: E402

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from training import loop, mesh  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment file, e.g. experiments/tiny.py.", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Output folder, e.g. runs/tiny.")
_VARIANT = flags.DEFINE_string("variant", None, "Train only this variant (default: all).")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Wipe run folders whose config differs.")
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed",
    False,
    "Call jax.distributed.initialize() with cluster auto-detection (TPU pods, SLURM, Open MPI). "
    "Setting JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID does it explicitly.",
)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # Orbax logs every file it writes at INFO.
    mesh.initialize_distributed(auto_detect=_DISTRIBUTED.value)
    try:
        results = loop.train_experiment(
            _CONFIG.value, _WORKDIR.value, _VARIANT.value, overwrite=_OVERWRITE.value
        )
    except (ValueError, KeyError, FloatingPointError) as error:
        # Config errors and a non-finite loss: one clear message, no traceback, exit code 1.
        sys.exit(f"train.py: {error}")
    for result in results:
        state = "stopped by SIGTERM" if result.preempted else "finished"
        loss = result.last_train.get("loss")
        print(f"{result.run_dir}: {state} at step {result.step}, last train loss {loss}")


if __name__ == "__main__":
    app.run(main)
