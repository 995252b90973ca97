"""Each extension point is one registration through its public register call: a fake task
(data.register_task), architecture (model.register_architecture), objective
(objectives.register_objective), mask kind (model.register_mask_kind), decoder family and
decoder (decoders.register_family, decoders.register) and evaluator with a verdict rule of its
own (runner.register_evaluator, rules.register_rule). One small experiment built from all six
is trained, evaluated and timed end to end, and each reaches results.json, its own table and a
verdict, with no other file changed (README: Extending)."""

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import data
from data import batching, vocab
from evaluation import decoders, environment, report, runner
from evaluation.report import rules
from evaluation.report.schema import MetricSpec
from evaluation.run import Measurement
from model import (
    ARCHITECTURES,
    MASK_KINDS,
    Decoder,
    MaskKind,
    generate,
    register_architecture,
    register_mask_kind,
)
from objectives import OBJECTIVES, Objective, masked_cross_entropy, register_objective
from plan import base_config, experiment_json, make_plans
from training import run_folder
from training.loop import train_experiment

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WINDOW = 3  # The local mask's reach: a query sees itself and the 2 positions before it.


class ShoutTask:
    """Copy over 6 symbols, a Task written from scratch (data.Task protocol), not a wrapper."""

    name, label = "shout", "shout (a test task)"
    num_symbols, length_preserving, text_metrics = 6, True, False

    def __init__(self, config: data.DataConfig):
        self.config = config
        self.max_source = 4
        self.seq_len = 2 * self.max_source + 2  # BOS source SEP target EOS, minus one.
        self.vocab_size = vocab.vocab_size(self.num_symbols)

    def detokenize(self, ids) -> str:
        return vocab.render([i for i in ids if i >= vocab.FIRST_SYMBOL], self.num_symbols)

    def token_label(self, token: int) -> str:
        return vocab.render([token], self.num_symbols)

    def random_control(self, max_len: int, vocab_size: int):
        del vocab_size
        random = dataclasses.replace(self.config, task="random", num_symbols=self.num_symbols)
        return data.make_task(dataclasses.replace(random, min_len=2, max_len=self.max_source))

    def outcome(self, source, generated) -> None:
        return None

    def batch(self, step, batch_size, *, split="train", process_index=0, process_count=1):
        rng = np.random.default_rng([self.config.seed, batching.split_id(split), step])
        lengths_B = rng.integers(2, self.max_source + 1, size=batch_size)
        symbols_BxL = rng.integers(0, self.num_symbols, size=(batch_size, self.max_source))
        source_BxL = (symbols_BxL + vocab.FIRST_SYMBOL).astype(np.int32)
        batch = batching.seq2seq_batch(
            source_BxL, lengths_B, source_BxL, lengths_B, seq_len=self.seq_len, loss_on="target"
        )
        rows = batching.process_rows(batch_size, process_index, process_count)
        return {key: value[rows] for key, value in batch.items()}


def _local(ctx) -> jax.Array:
    """A query sees itself and the WINDOW - 1 positions before it (EMPTY keys never)."""
    return (ctx.k_Bx1xS <= ctx.q_BxTx1) & (ctx.k_Bx1xS > ctx.q_BxTx1 - WINDOW)


LOCAL = MaskKind(
    "local", "local window", _local, exact_cache=True, caches_prompt=True, target_view="past"
)


class NarrowDecoder(Decoder):
    """A decoder architecture registered from outside model/: the local mask only."""

    name, label = "narrow_decoder", "narrow"
    mask_kinds = ("local",)

    @classmethod
    def timing_mask(cls, mask_kind: str) -> str:
        return "local"  # Every decoder it is timed for runs on its one mask.

    @classmethod
    def mask_label(cls, mask_kind: str) -> str:
        return f"narrow, {mask_kind}"


def word_dropout_loss(model, batch, rng, dropout_rng, smoothing=0.0):
    """Teacher forcing whose input targets are MASK with probability 0.2 (word dropout)."""
    inputs_BxT = batch["inputs"]
    cols_1xT = jnp.arange(inputs_BxT.shape[1])[None, :]
    targets_BxT = cols_1xT >= batch["prefix_lengths"][:, None]
    dropped_BxT = targets_BxT & jax.random.bernoulli(rng, 0.2, inputs_BxT.shape)
    logits_BxTxV, _ = model(
        jnp.where(dropped_BxT, vocab.MASK, inputs_BxT),
        lengths_B=batch["lengths"],
        prefix_lengths_B=batch["prefix_lengths"],
        dropout_rng=dropout_rng,
    )
    return masked_cross_entropy(logits_BxTxV, batch["targets"], batch["loss_mask"], smoothing)


WORD_DROPOUT = Objective(
    "word_dropout",
    "teacher forcing with 20% of the input targets replaced by MASK",
    "next_token",
    word_dropout_loss,
    settings=(OBJECTIVES["teacher_forcing"].settings),
    target_views=("past",),
    mask_reason="it is a next-token objective",
)


def _greedy(models, prompts):
    return generate(
        models.model, prompts.prompts_BxP, prompts.prompt_lengths_B,
        max_new_tokens=prompts.max_new_tokens, eos_id=prompts.eos_id,
    )  # fmt: skip


LOOKAHEAD = "lookahead_greedy"


def _lookahead() -> decoders.DecoderSpec:
    """The fake family's decoder (its family must be registered first)."""
    return decoders.DecoderSpec(
        id=LOOKAHEAD,
        label="lookahead (greedy)",
        family="lookahead",
        description="Greedy decoding, under a family of its own.",
        decode=_greedy,
        applies_to=lambda mask, objective: objective.id == "word_dropout",
        timing_mask="local",
    )


def param_norm(run, settings, log) -> Measurement:
    """The global norm of the parameters: a fake evaluator."""
    leaves = jax.tree.leaves(nnx.state(run.model, nnx.Param))
    norm = sum(float((leaf**2).sum()) for leaf in leaves) ** 0.5
    return Measurement(metrics={"param_norm": (norm, None)})


def _norm_rule(results, record, spec, rule) -> list[str]:
    value = record["metrics"][spec["name"]]["mean"]
    return [f"{record['name']}: the weights are {'not ' if value > 0 else ''}all zero."]


PARAM_NORM = runner.Evaluator(
    param_norm,
    "run",
    metrics=(
        MetricSpec(
            "param_norm",
            "‖θ‖",
            table="Parameter norms",
            verdicts=({"rule": "norm_nonzero"},),
            method="**‖θ‖**: the global norm of the parameters.",
        ),
    ),
)


@pytest.fixture
def registered():
    data.register_task("shout", ShoutTask)
    register_architecture(NarrowDecoder)
    register_objective(WORD_DROPOUT)
    register_mask_kind(LOCAL)
    decoders.register_family("lookahead", "greedy decoding under a family of its own.")
    decoders.register(_lookahead())
    runner.register_evaluator("param_norm", PARAM_NORM)
    rules.register_rule("norm_nonzero", "variant", _norm_rule)
    yield
    del data.TASKS["shout"], ARCHITECTURES["narrow_decoder"], OBJECTIVES["word_dropout"]
    del MASK_KINDS["local"], decoders.FAMILIES["lookahead"], decoders.DECODERS[LOOKAHEAD]
    del runner.EVALUATORS["param_norm"], rules.RULES["norm_nonzero"]


def _config():
    config = base_config()
    config.name = "ext"
    config.data.task = "shout"
    config.model.update(
        architecture="narrow_decoder", attention_mask_kind="local", d_model=32, num_heads=2,
        num_layers=1, d_ff=64,
    )  # fmt: skip
    config.train.update(
        objective="word_dropout", batch_size=8, num_steps=2, log_every=2, eval_every=0,
        checkpoint_every=2,
    )  # fmt: skip
    config.eval.update(
        num_examples=8, batch_size=8, num_samples=1, leakage_examples=2, dependency_examples=1,
        perturbation_positions=2, decoders=("ar_cache", LOOKAHEAD),
    )  # fmt: skip
    config.eval.speed.update(
        variants=("narrow",), decoders=("ar_cache", LOOKAHEAD), lengths=(12,), prompt_len=4,
        batch_size=2, throughput_length=12, repeats=1,
    )  # fmt: skip
    config.variants = {"narrow": {}}
    return config


@pytest.mark.slow
def test_six_registered_fakes_are_trained_evaluated_timed_and_reported(registered, tmp_path):
    config, workdir = _config(), str(tmp_path / "ext")
    train_experiment(make_plans(config), workdir, experiment_json(config))
    results = runner.evaluate_workdir(
        workdir, evaluators=["leakage", "quality", "speed", "param_norm"], log=lambda _: None
    )
    results.update(environment.describe(REPO))
    path = report.write(run_folder.report_dir(workdir), results)
    with open(os.path.join(path, "results.json"), encoding="utf-8") as f:
        written = json.load(f)
    with open(os.path.join(path, "report.md"), encoding="utf-8") as f:
        markdown = f.read()
    (record,) = written["variants"]
    metrics = record["metrics"]
    # Task, architecture, objective and mask kind: trained with, and named in results.json.
    assert (record["task"], record["architecture"]) == ("shout (a test task)", "narrow_decoder")
    assert (record["objective"], record["model_kind"], record["mask_kind"]) == (
        "word_dropout", "next_token", "local",
    )  # fmt: skip
    assert record["exact_mask"] is True and record["mask_label"] == "narrow, local"
    # The local mask is causal within its window: nothing after t moves a logit at t.
    assert metrics["perturbation_leakage"]["mean"] == 0.0
    # The decoder family: scored beside AR (cache), its family described, and timed.
    assert {"exact_match/ar_cache", f"exact_match/{LOOKAHEAD}"} <= set(metrics)
    assert written["decoders"][LOOKAHEAD]["family"] == "lookahead"
    assert "lookahead" in written["families"]
    timed = {row["decoder"] for row in written["speed"]["sampling"]}
    assert {"ar_cache", LOOKAHEAD} <= timed
    assert "lookahead (greedy)" in markdown
    # The evaluator: in results.json, in its own table, with a verdict of its own rule.
    assert metrics["param_norm"]["mean"] > 0
    assert "## Parameter norms" in markdown or "### Parameter norms" in markdown
    assert "narrow: the weights are not all zero." in report.verdicts(written)
    summary = next(line for line in markdown.splitlines() if line.startswith("| narrow |"))
    assert "| shout (a test task) | narrow, local |" in summary
