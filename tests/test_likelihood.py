"""evaluation/likelihood.py: exact NLL for AR models, the ELBO bound for diffusion models, no
metric for CMLM models; each row's [nats, tokens] kept for paired verdicts (the verdict on
BD3-LM's ordering: test_likelihood_rules.py)."""

import math
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from data import vocab
from evaluation import environment, likelihood, quality, report, runner, scoring
from evaluation.report.verdicts import verdicts
from evaluation.run import LoadedRun
from experiments import tiny
from model import diffusion, make_decoder
from plan import experiment_json, make_plan, make_plans
from training.loop import train_experiment

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(kind: str, objective: str, block_size: int = 1, length_head: bool = False):
    """A LoadedRun of a fresh tiny model (random weights) on tiny's copy task, 8 examples."""
    config = tiny.get_config()
    config.model.update(
        num_layers=1, d_model=16, num_heads=2, d_ff=32, length_head=length_head,
        attention_mask_kind=kind, block_size=block_size,
    )  # fmt: skip
    config.train.objective = objective
    config.eval.update(num_examples=8, batch_size=8)
    config.variants = ml_collections.ConfigDict()
    plan = make_plan(config, "")
    return LoadedRun(kind, 0, "/nowhere", make_decoder(plan.model, 0), plan, 0)


def _bits(run) -> tuple[float, float]:
    return likelihood.evaluate(run, run.config.eval, lambda _: None).metrics["likelihood_bits"]


@pytest.mark.parametrize("kind, loss", [("causal", "teacher_forced"), ("full", "honest")])
def test_an_ar_model_gives_its_exact_nll_in_bits(kind, loss):
    """On copy (loss on the target and EOS) the exact NLL is the held-out loss: teacher-forced
    for a causal model, honest for a leaky full-mask one."""
    run = _run(kind, "teacher_forcing")
    per_row = quality.losses(run.model, run.task, 8, 8)
    found = likelihood.evaluate(run, run.config.eval, lambda _: None)
    bits, sem = found.metrics["likelihood_bits"]
    expected = per_row[loss].sum() / per_row["count"].sum() / math.log(2.0)
    np.testing.assert_allclose(bits, expected, rtol=1e-5)
    assert 0 < sem < bits
    # Each row's [nats, tokens], in the eval rows' order: the paired verdicts' statistics.
    rows_Nx2 = np.asarray(found.sentences["likelihood_bits"])
    np.testing.assert_allclose(rows_Nx2[:, 0], per_row[loss], rtol=1e-5)
    np.testing.assert_array_equal(rows_Nx2[:, 1], per_row["count"])


@pytest.mark.slow
def test_bd3_with_block_size_1_gives_its_bound_exactly_whatever_the_samples():
    """Masked by count, a block of one token is always masked with weight 1: the estimate is
    the deterministic sum of -log p(x_i | x_<i, MASK at i) over the row read whole, its EOS
    included (a block model's span takes it)."""
    run = _run("block_causal", "diffusion", block_size=1)
    batch = {k: jnp.asarray(v) for k, v in next(scoring.eval_batches(run.task, 8, 8)).items()}
    tokens_BxS, ends_B, _ = diffusion.whole_sequence(
        batch["inputs"], batch["targets"], batch["lengths"], vocab.EOS, eos_in_span=True
    )
    K = diffusion.num_blocks(run.model.cfg, tokens_BxS.shape[1])
    graphdef, state = nnx.split(run.model)

    @jax.jit
    def all_masked(state):
        return diffusion.elbo_terms(
            nnx.merge(graphdef, state), tokens_BxS, batch["prefix_lengths"], ends_B,
            jnp.ones((8, K)), jax.random.key(0), mask_id=vocab.MASK,
        )  # fmt: skip

    nats_B, tokens_B = all_masked(state)
    estimate_B, counted_B = likelihood.diffusion_nats(run.model, batch, jax.random.key(1), 2)
    np.testing.assert_allclose(estimate_B, nats_B, rtol=1e-5)
    np.testing.assert_array_equal(counted_B, tokens_B)
    # The evaluator's own, with eval.likelihood_t_samples draws:
    bits, _ = _bits(run)
    np.testing.assert_allclose(bits, float(nats_B.sum() / tokens_B.sum()) / math.log(2), rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("length_head", [False, True])
def test_a_diffusion_model_gives_a_bound_and_says_whether_it_is_given_the_length(length_head):
    run = _run("prefix_full", "diffusion", length_head=length_head)
    found = likelihood.evaluate(run, run.config.eval, lambda _: None)
    bits, sem = found.metrics["likelihood_bits"]
    assert np.isfinite(bits) and bits > 0 and sem > 0
    assert found.metrics["likelihood_given_length"] == (float(not length_head), None)
    batch = next(scoring.eval_batches(run.task, 8, 8))
    _, tokens_B = likelihood.diffusion_nats(run.model, batch, jax.random.key(0), 2)
    targets_B = batch["lengths"] - batch["prefix_lengths"]
    np.testing.assert_array_equal(tokens_B, targets_B + int(length_head))  # The end, scored.


def test_a_cmlm_model_has_no_likelihood():
    run = _run("prefix_full", "masked")
    assert likelihood.evaluate(run, run.config.eval, lambda _: None).metrics == {}


@pytest.mark.slow
def test_eval_reports_the_likelihood_of_ar_and_diffusion_variants_and_their_ordering(tmp_path):
    config = tiny.get_config()
    config.model.update(num_layers=1, d_model=16, num_heads=2, d_ff=32)
    config.train.update(num_steps=2, log_every=2, eval_every=0, checkpoint_every=2)
    config.eval.update(num_examples=8, batch_size=8)
    diffusion_objective = {"objective": "diffusion"}
    config.variants.mdlm = {"model": {"attention_mask_kind": "full"}, "train": diffusion_objective}
    config.variants.bd3 = {
        "model": {"attention_mask_kind": "block_causal", "block_size": 2},
        "train": diffusion_objective,
    }
    for variant in ("causal", "mdlm", "bd3"):
        train_experiment(make_plans(config, variant), str(tmp_path), experiment_json(config))
    results = runner.evaluate_workdir(str(tmp_path), evaluators=["likelihood"], log=lambda _: None)
    by_name = {r["name"]: r for r in results["variants"]}
    assert set(by_name) == {"causal", "mdlm", "bd3"}
    assert all("likelihood_bits" in r["metrics"] for r in by_name.values())
    # One seed of 8 rows each, [nats, tokens]: the ordering verdict pairs them row by row.
    assert all(np.shape(r["sentences"]["likelihood_bits"]) == (1, 8, 2) for r in by_name.values())
    assert by_name["mdlm"]["non_ar"] and not by_name["causal"]["non_ar"]
    (line,) = verdicts(results)
    assert "causal (AR)" in line and "bd3 (block 2)" in line and "mdlm (MDLM)" in line
    rendered = report.render({**results, **environment.describe(REPO)})["report.md"]
    assert likelihood.TABLE in rendered and "**Likelihood** in bits per token" in rendered
