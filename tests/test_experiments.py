"""experiments/: every experiment file documents its command, loads, and plans each of its
variants (plan.py's own behaviour is tested in test_plan.py)."""

import glob
import importlib
import os

import ml_collections
import pytest

from plan import make_plan, resolve, variant_names

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENTS = sorted(
    os.path.splitext(os.path.basename(path))[0]
    for path in glob.glob(os.path.join(REPO, "experiments", "*.py"))
    if os.path.basename(path) not in ("base.py", "__init__.py")
)
TFDS_TASKS = ("tfds_text", "tfds_translation")  # Need prepared TFDS data: refused in tmp_path.


def _data_of(config: ml_collections.ConfigDict, variant: str) -> dict:
    """A variant's data section: the experiment's, with the variant's overrides."""
    overrides = config.variants[variant].to_dict() if variant else {}
    return {**config.data.to_dict(), **overrides.get("data", {})}


def _task_of(config: ml_collections.ConfigDict, variant: str) -> str:
    """The data task a variant trains on: its override, else the experiment's."""
    return _data_of(config, variant)["task"]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_loads_and_resolves_every_variant(name, tmp_path):
    module = importlib.import_module(f"experiments.{name}")
    assert module.__doc__ and f"python train.py --config=experiments/{name}.py" in module.__doc__
    config = module.get_config()
    config.data.data_dir = str(tmp_path)  # Empty, whatever this machine has prepared.
    for variant in variant_names(config):
        if _task_of(config, variant) in TFDS_TASKS:
            with pytest.raises(FileNotFoundError, match="data_dir"):
                make_plan(config, variant)
            continue
        distilled_dir = _data_of(config, variant)["distilled_dir"]
        if distilled_dir and not os.path.isdir(os.path.join(REPO, distilled_dir)):
            # distill.py makes it after the teacher trains; until then the variant refuses.
            with pytest.raises(ValueError, match="distill.py"):
                make_plan(config, variant)
            continue
        make_plan(config, variant)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_a_judge_of_generative_nll_is_a_separate_model_trained_4x_longer(name):
    """MDLM and BD3-LM judge samples with a stronger model than the candidates; the `ar`
    candidate once judged itself and its rivals."""
    config = importlib.import_module(f"experiments.{name}").get_config()
    for variant in variant_names(config):
        judge = resolve(config, variant).eval.diffusion.ar_variant
        if not judge or judge == variant:
            continue
        steps, judge_steps = (resolve(config, v).train.num_steps for v in (variant, judge))
        assert judge_steps >= 4 * steps, (variant, judge)
        assert resolve(config, judge).train.objective == "teacher_forcing"


@pytest.mark.parametrize("name", ["translate", "diffusion"])
def test_the_gpu_size_keeps_every_variant_and_its_judge_and_refuses_other_sizes(name):
    module = importlib.import_module(f"experiments.{name}")
    cpu, gpu = module.get_config(), module.get_config("gpu")
    assert variant_names(gpu) == variant_names(cpu) and gpu.name == f"{name}_gpu"
    for variant in variant_names(gpu):
        assert resolve(gpu, variant).model.d_model == 512
        judge = resolve(gpu, variant).eval.diffusion.ar_variant
        if judge and judge != variant:
            steps, judge_steps = (resolve(gpu, v).train.num_steps for v in (variant, judge))
            assert judge_steps >= 4 * steps, (variant, judge)
    with pytest.raises(ValueError, match="size must be"):
        module.get_config("tpu")
