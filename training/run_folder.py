"""The run-folder layout: the one place that knows where train.py and eval.py keep things.

  runs/<experiment>/                 the workdir
    experiment.json                  the whole experiment config (every variant)
    <variant>/seed_<s>/              one run
      config.json                    the resolved config of that run (checked on resume)
      checkpoints/<step>/            Orbax checkpoints
      metrics.jsonl, tensorboard/    training metrics
    report/                          eval.py's report: results.json, report.md, index.html, *.png

Plain paths and JSON only (no JAX), so every entry point can use it.
"""

import json
import os

EXPERIMENT_FILE = "experiment.json"
CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"
METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"
REPORT_DIR = "report"
RESULTS_FILE = "results.json"
LOCK_FILE = ".lock"  # training/run_lock.py: one training process per workdir.
EVAL_LOCK_FILE = ".eval-lock"  # One eval.py per workdir (it may run beside training).
SEED_PREFIX = "seed_"
DEFAULT_VARIANT = "default"  # The folder of an experiment that defines no variants.


def run_dir(workdir: str, variant: str, seed: int) -> str:
    """<workdir>/<variant>/seed_<seed>."""
    return os.path.join(workdir, variant or DEFAULT_VARIANT, f"{SEED_PREFIX}{seed}")


def variant_and_seed(run: str) -> tuple[str, int]:
    """(variant, seed) of a run folder <workdir>/<variant>/seed_<seed>; ValueError otherwise."""
    run = os.path.normpath(run)
    variant, seed_folder = os.path.basename(os.path.dirname(run)), os.path.basename(run)
    seed = seed_folder.removeprefix(SEED_PREFIX)
    if not seed_folder.startswith(SEED_PREFIX) or not seed.isdigit():
        raise ValueError(f"{run} is not a run folder <workdir>/<variant>/{SEED_PREFIX}<seed>")
    return variant, int(seed)


def config_path(run: str) -> str:
    return os.path.join(run, CONFIG_FILE)


def checkpoint_dir(run: str) -> str:
    """Absolute, as Orbax requires."""
    return os.path.abspath(os.path.join(run, CHECKPOINT_DIR))


def metrics_path(run: str) -> str:
    return os.path.join(run, METRICS_FILE)


def tensorboard_dir(run: str) -> str:
    return os.path.join(run, TENSORBOARD_DIR)


def lock_path(workdir: str) -> str:
    return os.path.join(workdir, LOCK_FILE)


def eval_lock_path(workdir: str) -> str:
    return os.path.join(workdir, EVAL_LOCK_FILE)


def extensions_path(run: str) -> str:
    """<run>/extensions.jsonl: each time the run was continued to a larger train.num_steps."""
    return os.path.join(run, "extensions.jsonl")


def checkpoint_steps(run: str) -> list[int]:
    """The steps with a checkpoint folder, ascending ([] when none was ever saved)."""
    path = checkpoint_dir(run)
    if not os.path.isdir(path):
        return []
    return sorted(int(name) for name in os.listdir(path) if name.isdigit())


def check_writable(workdir: str) -> None:
    """Raises an OSError naming the problem when `workdir` cannot hold runs. Creates nothing."""
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise NotADirectoryError(f"--workdir={workdir} is a file, not a folder.")
    existing = os.path.abspath(workdir)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise NotADirectoryError(f"--workdir={workdir}: {existing} is a file, not a folder.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"--workdir={workdir}: {existing} is not writable.")


def experiment_path(workdir: str) -> str:
    return os.path.join(workdir, EXPERIMENT_FILE)


def report_dir(workdir: str) -> str:
    return os.path.join(workdir, REPORT_DIR)


def results_path(workdir: str) -> str:
    return os.path.join(report_dir(workdir), RESULTS_FILE)


def read_experiment(workdir: str) -> dict | None:
    """The experiment config saved by train.py, or None when there is none."""
    path = experiment_path(workdir)
    if not os.path.exists(path):
        return None
    return read_json(path, "restore it, or delete it: train.py rewrites it")


def read_json(path: str, fix: str = "restore it, or delete it and retrain") -> dict:
    """A JSON object file of the run folder; a ValueError names the file and says how to `fix`
    it when it is damaged (not JSON, or not an object)."""
    with open(path) as f:
        try:
            content = json.load(f)
        except ValueError as error:
            raise ValueError(f"{path} is damaged (not valid JSON: {error}); {fix}.") from None
    if not isinstance(content, dict):
        raise ValueError(
            f"{path} is damaged (a JSON {type(content).__name__}, not an object); {fix}."
        )
    return content


def check_experiment(workdir: str, name: str) -> None:
    """Refuses a workdir whose experiment.json is another experiment's (`name` is config.name):
    training into it would replace that file and mix two experiments in one report."""
    saved = read_experiment(workdir)
    if saved is None:
        return
    if saved.get("name") != name:
        raise ValueError(
            f"--workdir={workdir} holds the experiment {saved.get('name')!r} "
            f"({experiment_path(workdir)}), not {name!r}: train {name!r} into another "
            "--workdir (--overwrite does not replace another experiment; delete that folder "
            "first if you mean to)."
        )


def seed_runs(variant_dir: str) -> list[tuple[int, str]]:
    """(seed, run folder) of each trained seed (one with a saved checkpoint), by seed."""
    if not os.path.isdir(variant_dir):
        return []
    found = []
    for entry in os.listdir(variant_dir):
        path = os.path.join(variant_dir, entry)
        suffix = entry.removeprefix(SEED_PREFIX)
        if entry.startswith(SEED_PREFIX) and suffix.isdigit() and checkpoint_steps(path):
            found.append((int(suffix), path))
    return sorted(found)


def defined_variants(workdir: str) -> list[str]:
    """The variant names experiment.json defines, in its order ([] without the file)."""
    experiment = read_experiment(workdir) or {}
    return list(experiment.get("variants") or {}) or ([DEFAULT_VARIANT] if experiment else [])


def trained_variants(workdir: str) -> list[tuple[str, str]]:
    """(variant, folder) of each variant with a trained seed: the experiment's order first."""
    present = sorted(
        entry
        for entry in os.listdir(workdir)
        if entry != REPORT_DIR and seed_runs(os.path.join(workdir, entry))
    )
    order = defined_variants(workdir)
    names = [n for n in order if n in present] + [n for n in present if n not in order]
    return [(name, os.path.join(workdir, name)) for name in names]


def sibling_run(run: str, variant: str, any_seed: bool = False) -> str | None:
    """The run of `variant` with this run's seed (e.g. a non-AR variant's AR baseline), if any;
    with `any_seed`, else the variant's one trained run whatever its seed (a judge trained once,
    at a seed of its own, for every seed it judges)."""
    run = os.path.normpath(run)
    workdir, seed_folder = os.path.dirname(os.path.dirname(run)), os.path.basename(run)
    path = os.path.join(workdir, variant, seed_folder)
    if checkpoint_steps(path):
        return path
    others = seed_runs(os.path.join(workdir, variant)) if any_seed else []
    return others[0][1] if len(others) == 1 else None
