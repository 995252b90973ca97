"""On plain text the learning curve is the likelihood at every kept checkpoint (bits per token:
exact for AR, the ELBO bound for diffusion), so diffusion's gap to AR is read against compute."""

import jax
import ml_collections
import pytest

from evaluation import runner
from evaluation.report import figures
from experiments import tiny
from plan import make_plan
from training import checkpoints, run_folder
from training.step import Hyperparams, init_train_state


@pytest.fixture(scope="module")
def text_workdir(tmp_path_factory) -> str:
    """An AR and an MDLM variant on plain text (prompt BOS alone), saved at steps 10 and 20."""
    config = tiny.get_config()
    config.data.update(task="random", num_symbols=8, min_len=3, max_len=5)
    config.model.update(num_layers=1, d_model=16, num_heads=2, d_ff=32)
    config.variants = ml_collections.ConfigDict()
    config.variants.ar = {"model": {"attention_mask_kind": "causal"}}
    config.variants.mdlm = {
        "model": {"attention_mask_kind": "full", "length_head": True},
        "train": {"objective": "diffusion"},
    }
    workdir = str(tmp_path_factory.mktemp("text"))
    for variant in ("ar", "mdlm"):
        plan = make_plan(config, variant)
        run_dir = run_folder.run_dir(workdir, variant, 0)
        checkpoints.prepare_run_dir(run_dir, plan, "new")
        _, params, opt_state = init_train_state(plan.model, Hyperparams.from_config(plan.train), 0)
        manager = checkpoints.make_manager(run_dir, 3)
        for step, scale in ((10, 1.0), (20, 0.5)):
            checkpoints.save(
                manager, step, jax.tree.map(lambda x, s=scale: x * s, params), opt_state
            )
        checkpoints.close(manager)
    return workdir


@pytest.mark.slow
def test_the_curve_of_plain_text_is_the_likelihood_at_each_checkpoint(text_workdir):
    results = runner.evaluate_workdir(
        text_workdir,
        evaluators=["likelihood", "learning_curve"],
        eval_overrides={"num_examples": 16, "learning_curve.num_examples": 16},
        log=lambda _: None,
    )
    for record in results["variants"]:
        curve = record["pictures"]["learning_curve"]
        assert curve["metric"] == "likelihood_bits" and curve["steps"] == [10, 20]
        assert curve["decoder_label"] == {"ar": "exact NLL", "mdlm": "ELBO bound"}[record["name"]]
        # The last point is the likelihood evaluator's figure: the same rows, model and keys.
        assert curve["values"][-1] == pytest.approx(record["metrics"]["likelihood_bits"]["mean"])
        assert curve["values"][0] != pytest.approx(curve["values"][-1])
        assert "likelihood_bits_averaged" in record["metrics"]
    assert "learning_curves.png" in figures.figures(results)
