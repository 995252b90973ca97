"""Evaluates every trained variant of a run folder and writes runs/<name>/report/.

  python eval.py --workdir=runs/demo [--variants=causal_copy,full_copy] [--nospeed]

See README, "Evaluation and the report", for what is measured and the results.json schema.
"""

import launch

launch.configure_xla_cpu()  # Before any JAX computation: XLA reads its flags once.

import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from absl import app, flags, logging  # noqa: E402

from evaluation import report, runner  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder written by train.py.", required=True)
_VARIANTS = flags.DEFINE_list("variants", [], "Variants to evaluate (default: every trained one).")
_SPEED = flags.DEFINE_bool("speed", True, "Time sampling (cache vs no cache) and training.")


def log(message: str) -> None:
    print(f"[eval {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # Orbax logs every file it reads at INFO.
    if not os.path.isdir(_WORKDIR.value):
        sys.exit(
            f"eval.py: --workdir={_WORKDIR.value} does not exist; train first: "
            f"python train.py --config=experiments/<name>.py --workdir={_WORKDIR.value}"
        )
    start = time.perf_counter()
    try:
        results, pictures = runner.evaluate_workdir(
            _WORKDIR.value, variants=_VARIANTS.value, with_speed=_SPEED.value, log=log
        )
    except FileNotFoundError as error:
        sys.exit(f"eval.py: {error}")
    results.update(report.environment(os.path.dirname(os.path.abspath(__file__))))
    results["verdicts"] = report.verdicts(results["variants"], results["speed"])
    log("drawing figures")
    images = report.figures(results["variants"], pictures, results["speed"])
    path = report.write_report(_WORKDIR.value, results, images)
    for verdict in results["verdicts"]:
        print(f"  - {verdict}")
    log(f"report written to {path}/index.html in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    app.run(main)
