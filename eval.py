"""Evaluates every trained variant of a run folder and writes runs/<name>/report/.

  python eval.py --workdir=runs/demo [--variants=causal_copy,full_copy]
  python eval.py --workdir=runs/demo --evaluators=leakage,loss,quality   # skip the timings
  python eval.py --workdir=runs/demo --render_only   # rebuild the report from its results.json
  python eval.py --workdir=runs/demo --eval.num_examples=32 --eval.speed.repeats=1
  python eval.py --workdir=runs/demo --eval.decoders=ar_cache,beam4   # a tuple as a comma list

See docs/evaluation.md for what is measured, and evaluation/report/store.py for the results.json
schema.
"""

import launch

launch.configure_xla_cpu()  # Before any JAX computation: XLA reads its flags once.

import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from evaluation import environment, report, runner  # noqa: E402
from evaluation.report import merge  # noqa: E402
from sections import default_eval_config  # noqa: E402
from training import run_folder, run_lock  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder written by train.py.", required=True)
_VARIANTS = flags.DEFINE_list("variants", [], "Variants to evaluate (default: every trained one).")
_EVALUATORS = flags.DEFINE_list(
    "evaluators", list(runner.EVALUATORS), "Evaluators to run (evaluation/runner.py's table)."
)
try:  # The overrides are parsed here, as the flag is defined.
    _EVAL = config_flags.DEFINE_config_dict(
        "eval",
        default_eval_config(),
        "Overrides of the `eval` section the runs were trained with, e.g. --eval.num_examples=32.",
        lock_config=True,
    )
except (AttributeError, KeyError, TypeError, ValueError) as error:
    launch.refuse_command_line(error)
_RENDER_ONLY = flags.DEFINE_bool(
    "render_only", False, "Rebuild report.md, index.html and the figures from results.json alone."
)


def log(message: str) -> None:
    print(f"[eval {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _check_writable(workdir: str) -> None:
    """Before any evaluation: the report is written into `workdir` at the end."""
    try:  # A real write: permissions alone miss read-only mounts (and root ignores them).
        with tempfile.TemporaryFile(dir=workdir):
            pass
    except OSError as error:
        raise PermissionError(
            f"--workdir={workdir} is not writable ({error.strerror}): the report goes to "
            f"{run_folder.report_dir(workdir)}; make it writable, or copy the workdir"
        ) from None


def _comma_lists(overrides: dict) -> dict:
    """--eval.decoders=ar_cache,beam4 as --evaluators takes it: a tuple setting given a comma
    list (which ml_collections reads as one string) gets its items."""
    return {
        key: tuple(item for part in value for item in part.split(",") if item)
        if isinstance(value, tuple) and all(isinstance(part, str) for part in value)
        else value
        for key, value in overrides.items()
    }


def _previous_results(workdir: str) -> dict | None:
    """The last report's results.json, or None where there is none this renderer reads."""
    try:
        return report.read_results(run_folder.report_dir(workdir))
    except ValueError:
        return None


def _keep_what_was_measured(workdir: str, results: dict) -> dict:
    """`results` over the last report's: what this eval did not recompute is kept and said."""
    merged, notes = merge.merge(_previous_results(workdir), results)
    for note in notes:
        log(f"kept: {note}")
    if notes:
        log(f"(to start a fresh report, delete {run_folder.results_path(workdir)} first)")
    return merged


def main(argv: list[str]) -> None:
    del argv  # launch.run refuses positional arguments.
    workdir = _WORKDIR.value
    if not os.path.isdir(workdir):
        raise FileNotFoundError(
            f"--workdir={workdir} is not a folder; train first: "
            f"python train.py --config=experiments/<name>.py --workdir={workdir}"
        )
    _check_writable(workdir)
    with run_lock.hold(workdir, eval_lock=True):
        _evaluate_and_write(workdir)


def _evaluate_and_write(workdir: str) -> None:
    start = time.perf_counter()
    if _RENDER_ONLY.value:
        results = report.read_results(run_folder.report_dir(workdir))
    else:
        results = runner.evaluate_workdir(
            workdir,
            variants=_VARIANTS.value,
            evaluators=_EVALUATORS.value,
            eval_overrides=_comma_lists(config_flags.get_override_values(flags.FLAGS["eval"])),
            log=log,
        )
        results.update(environment.describe(os.path.dirname(os.path.abspath(__file__))))
        results = _keep_what_was_measured(workdir, results)
    try:
        path, verdicts = _write_report(workdir, results)
    except (KeyError, TypeError, AttributeError, IndexError) as error:
        if not _RENDER_ONLY.value:
            raise  # Results this program just measured: a bug.
        raise ValueError(
            f"{run_folder.results_path(workdir)} does not have the shape this renderer reads "
            f"({type(error).__name__}: {launch.message_of(error)}); rerun python eval.py "
            f"--workdir={workdir} without --render_only"
        ) from error
    for verdict in verdicts:
        print(f"  - {verdict}")
    log(f"report written to {path}/index.html in {time.perf_counter() - start:.0f} s")


def _write_report(workdir: str, results: dict) -> tuple[str, list[str]]:
    """Warns, renders and writes the report; (its folder, its verdicts)."""
    for warning in report.warnings(results):
        log(f"warning: {warning}")
    log("rendering the report")
    path = report.write(run_folder.report_dir(workdir), results)
    return path, list(report.verdicts(results))


if __name__ == "__main__":
    launch.run(main)
