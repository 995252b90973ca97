"""Each extension point is one registration: a fake task (data.register_task), a fake
architecture (model.register_architecture) and a fake evaluator (runner.EVALUATORS), each
registered once here, are trained and evaluated end to end and reach results.json, the summary
and a verdict, with no other file changed."""

import dataclasses
import json
import os

import jax
import pytest
from flax import nnx

import data
from evaluation import environment, report, runner
from evaluation.report.schema import MetricSpec
from evaluation.run import Measurement
from model import ARCHITECTURES, Decoder, register_architecture
from plan import make_plans
from training import run_folder
from training.loop import train_experiment

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ShoutTask:
    """Copy, registered from outside data/ under an id and a label of its own."""

    name, label = "shout", "shout (a test task)"

    def __init__(self, config: data.DataConfig):
        self.config = config
        self.inner = data.make_task(dataclasses.replace(config, task="copy"))

    def __getattr__(self, attribute: str):
        return getattr(self.inner, attribute)


class NarrowDecoder(Decoder):
    """A decoder architecture registered from outside model/: causal only, its own label."""

    name, label = "narrow_decoder", "narrow"
    mask_kinds = ("causal",)

    @classmethod
    def mask_label(cls, mask_kind: str) -> str:
        return f"narrow, {mask_kind}"


def param_norm(run, settings, log) -> Measurement:
    """The global norm of the parameters: a fake evaluator."""
    leaves = jax.tree.leaves(nnx.state(run.model, nnx.Param))
    norm = sum(float((leaf**2).sum()) for leaf in leaves) ** 0.5
    return Measurement(metrics={"param_norm": (norm, None)})


PARAM_NORM = runner.Evaluator(
    param_norm,
    "run",
    metrics=(
        MetricSpec(
            "param_norm",
            "‖θ‖",
            verdicts=({"rule": "state", "text": "{variant} ({mask}) on {task}: ‖θ‖ = {value}."},),
            method="**‖θ‖**: the global norm of the parameters.",
        ),
    ),
)


@pytest.fixture
def registered(monkeypatch):
    data.register_task("shout", ShoutTask)
    register_architecture(NarrowDecoder)
    monkeypatch.setitem(runner.EVALUATORS, "param_norm", PARAM_NORM)
    yield
    del data.TASKS["shout"], ARCHITECTURES["narrow_decoder"]


def test_a_new_task_architecture_and_evaluator_reach_every_table_and_verdict(registered, tmp_path):
    from experiments import tiny

    config = tiny.get_config()
    config.data.task = "shout"
    config.model.architecture = "narrow_decoder"
    config.train.update(num_steps=2, log_every=2, eval_every=0, checkpoint_every=2)
    config.eval.update(num_examples=8, batch_size=8, leakage_examples=4, dependency_examples=1)
    config.variants = {"narrow": {"model": {"attention_mask_kind": "causal"}}}
    workdir = str(tmp_path / "ext")
    train_experiment(
        make_plans(config), workdir, config.to_dict()
    )  # Trained, checkpointed and restored by its id.
    results = runner.evaluate_workdir(
        workdir, evaluators=["leakage", "param_norm"], log=lambda _: None
    )
    results.update(environment.describe(REPO))
    path = report.write(run_folder.report_dir(workdir), results)
    with open(os.path.join(path, "results.json"), encoding="utf-8") as f:
        written = json.load(f)
    record = written["variants"][0]
    assert (record["task"], record["architecture"]) == ("shout (a test task)", "narrow_decoder")
    assert record["mask_label"] == "narrow, causal" and record["metrics"]["param_norm"]["mean"] > 0
    assert any(spec["name"] == "param_norm" for spec in written["metrics_info"])
    with open(os.path.join(path, "report.md"), encoding="utf-8") as f:
        markdown = f.read()
    summary = next(line for line in markdown.splitlines() if line.startswith("| narrow |"))
    assert "| shout (a test task) | narrow, causal |" in summary
    assert "‖θ‖" in markdown.split("| narrow |")[0]  # Its column's header.
    norm = f"{record['metrics']['param_norm']['mean']:.3g}"
    verdict = f"narrow (narrow, causal) on shout (a test task): ‖θ‖ = {norm}."
    assert verdict in report.verdicts(written)
    assert "### shout (a test task)" in markdown and "**‖θ‖**: the global norm" in markdown
