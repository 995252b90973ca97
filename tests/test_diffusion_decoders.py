"""The diffusion rows of the decoders table and the statistics that judge samples without a
reference (evaluation/decoders/diffusion.py): which variants they score, the quality evaluator
running them (plain text too), the generative NLL against a second computation, and timing."""

import jax
import numpy as np
import pytest
from conftest import make_tiny_config, make_tiny_model
from flax import nnx

import data
from data import vocab
from evaluation import decoders, quality, scoring, timing
from evaluation.decoders import diffusion
from evaluation.run import LoadedRun
from model import diffusion_generate, make_decoder
from model.decoder import split_model
from model.masks import mask_kind
from objectives import objective_of
from plan import base_config, make_plan

DEFAULT = ["diffusion_t8", "diffusion_conf_t8"]


class _DiffusionRun(LoadedRun):
    """A run trained with the diffusion objective, whose AR variant is `ar_model` (no files)."""

    objective = objective_of("diffusion")  # The record, as LoadedRun.objective gives it.
    ar_model = None

    def models_for(self, spec, any_seed=False):
        return decoders.Models(self.model, self.ar_model if spec.needs else None)


def _run(task_config: dict, kind: str, ar_variant: str = "ar", block_size: int = 1):
    config = base_config()
    config.data.update(task_config)
    config.model.update(attention_mask_kind=kind, block_size=block_size)
    config.eval.update(num_examples=6, batch_size=3, num_samples=2)
    config.eval.diffusion.ar_variant = ar_variant
    # The judge is an AR model (the plan refuses another).
    judge = {ar_variant: {"model": {"attention_mask_kind": "causal"}}} if ar_variant else {}
    config.variants = {"diffusion": {}, **judge}
    plan = make_plan(config, "diffusion")
    task = data.make_task(plan.data)
    cfg = make_tiny_config(
        vocab_size=task.vocab_size,
        max_len=task.seq_len,
        attention_mask_kind=kind,
        block_size=block_size,
    )
    run = _DiffusionRun(kind, 0, "/nowhere", make_decoder(cfg), plan, 0)
    run.ar_model = make_tiny_model(task, "causal", seed=1)
    return run


COPY = dict(task="copy", num_symbols=8, min_len=2, max_len=6)


def test_diffusion_rows_score_diffusion_models_only_and_ar_rows_do_not():
    def ids(*args):
        mask, objective, *selection = args
        return [
            s.id for s in decoders.scored_on(mask_kind(mask), objective_of(objective), *selection)
        ]

    for kind in ("full", "prefix_full", "block_causal"):
        assert ids(kind, "diffusion") == DEFAULT
    assert ids("causal", "diffusion") == [] and ids("full", "teacher_forcing")[0] == "ar_no_cache"
    every = ids("block_causal", "diffusion", list(decoders.DECODERS))
    assert every == [f"diffusion_t{t}" for t in diffusion.STEPS] + [
        f"diffusion_conf_t{t}" for t in diffusion.STEPS
    ] + [f"diffusion_fh_t{t}" for t in diffusion.STEPS] + [
        f"diffusion_t{t}_p90" for t in diffusion.STEPS
    ] + [
        f"diffusion{s}_t{t}_lb1" for s in ("", "_conf") for t in diffusion.PREDICTED_LENGTH_STEPS
    ] + [f"diffusion_t{t}_p90_lb1" for t in diffusion.STEPS]
    # The predicted-length rows (translation's) read the length head, and are timed as the
    # one block an encoder-decoder samples.
    predicted = decoders.lookup(["diffusion_conf_t4_lb1"])[0]
    assert predicted.needs_length_head and predicted.params.length_beam == 1
    assert predicted.architectures is None and predicted.timing_mask == "prefix_full"
    assert ids("causal", "teacher_forcing", ["ar_sample", "diffusion_t8"]) == ["ar_sample"]
    assert "oracle length" in decoders.FAMILIES["diffusion"]
    assert "block size" in decoders.FAMILIES["diffusion"]


def test_unigram_entropy_known_values():
    assert diffusion.unigram_entropy(np.array([7, 7, 7, 7])) == 0.0
    assert diffusion.unigram_entropy(np.array([5, 6, 7, 8])) == pytest.approx(np.log(4))
    assert diffusion.unigram_entropy(np.array([5, 5, 6, 6])) == pytest.approx(np.log(2))
    assert diffusion.unigram_entropy(np.array([], np.int32)) == 0.0


def _honest_nll(model, tokens, start: int, end: int) -> float:
    """The NLL of tokens[start:end], each from a pass that sees the tokens before it alone (the
    rest is padding, which every mask hides)."""
    graphdef, state = nnx.split(model)

    @jax.jit
    def last_log_probs(tokens_1xW, length):
        logits_1xWxV, _ = nnx.merge(graphdef, state)(tokens_1xW, lengths_B=length[None])
        return jax.nn.log_softmax(logits_1xWxV[0, length - 1])

    row = np.asarray(tokens[None, : end - 1], np.int32)
    return -sum(float(last_log_probs(row, np.int32(t))[tokens[t]]) for t in range(start, end))


@pytest.mark.slow
def test_generative_nll_is_the_ar_models_nll_of_the_samples_computed_token_by_token(copy_task):
    sampler = make_tiny_model(copy_task, "prefix_full")
    ar = make_tiny_model(copy_task, "causal", seed=1)
    batch = copy_task.batch(0, 4, split="eval")
    prompts = scoring.prompts_of(batch, int(batch["prefix_lengths"].max()), 7)
    out = diffusion_generate(
        sampler,
        prompts.prompts_BxP,
        prompts.prompt_lengths_B,
        prompts.target_lengths_B,
        num_steps=2,
        mask_id=vocab.MASK,
        eos_id=vocab.EOS,
        max_target_len=6,
    )
    generated = scoring._continuations(out, prompts)
    rows = diffusion.sample_statistics(out, generated, decoders.Models(sampler, ar), prompts)
    tokens = np.asarray(out.tokens_BxL)
    for b, p in enumerate(prompts.prompt_lengths_B):
        n = prompts.target_lengths_B[b]  # EOS is excluded.
        assert rows["nll_count"][b] == n
        assert rows["nll_sum"][b] == pytest.approx(_honest_nll(ar, tokens[b], p, p + n), rel=1e-4)
        assert rows["entropy"][b] == pytest.approx(diffusion.unigram_entropy(tokens[b, p : p + n]))
    assert all(1 <= calls <= 2 for calls in rows["calls_per_block"])  # T = 2, one block.
    alone = diffusion.sample_statistics(out, generated, decoders.Models(sampler), prompts)
    assert set(alone) == {"entropy", "calls_per_block"}
    assert set(diffusion.summarize(alone)) == {"sample_entropy", "calls_per_block"}
    assert set(diffusion.summarize(rows)) == {"sample_entropy", "gen_nll", "calls_per_block"}


@pytest.mark.slow
@pytest.mark.parametrize("kind, block_size", [("prefix_full", 1), ("block_causal", 2)])
def test_the_quality_evaluator_decodes_and_scores_the_default_diffusion_rows(kind, block_size):
    run = _run(COPY, kind, block_size=block_size)
    found = quality.evaluate_generation(run, run.config.eval, lambda _: None)
    assert list(found.samples) == DEFAULT
    for name in DEFAULT:
        assert 0 <= found.metrics[f"exact_match/{name}"][0] <= 1
        assert found.metrics[f"gen_nll/{name}"][0] > 0
        assert 0 <= found.metrics[f"sample_entropy/{name}"][0] <= np.log(6)
        assert len(found.samples[name]) == 2


@pytest.mark.slow
def test_plain_text_scores_only_the_reference_free_rows_and_gen_nll_needs_an_ar_variant():
    random_text = dict(task="random", num_symbols=8, min_len=3, max_len=5)
    run = _run(random_text, "prefix_full", ar_variant="")
    found = quality.evaluate_generation(run, run.config.eval, lambda _: None)
    assert list(found.samples) == DEFAULT
    assert not [k for k in found.metrics if k.startswith("gen_nll/")]  # No AR variant named.
    assert "sample_entropy/diffusion_t8" in found.metrics
    # Batches of equal prompts get different keys (their index), so different samples.
    spec, batch = decoders.DECODERS["diffusion_t8"], run.task.batch(0, 3, split="eval")
    same = [scoring.prompts_of(batch, 1, 6, seed=seed) for seed in (0, 1)]
    outs = [np.asarray(spec.decode(decoders.Models(run.model), p).tokens_BxL) for p in same]
    assert not np.array_equal(*outs)
    causal = _run(random_text, "causal")
    causal.objective = objective_of("teacher_forcing")
    settings = causal.config.eval.with_overrides({"decoders": ("ar_cache", "ar_sample")})
    found = quality.evaluate_generation(causal, settings, lambda _: None)
    assert list(found.samples) == ["ar_sample"]  # Greedy AR has no reference-free statistics.
    assert found.metrics["gen_nll/ar_sample"][0] > 0


def test_diffusion_rows_are_timed_on_the_timed_variants_blocks():
    spec = decoders.DECODERS["diffusion_t8"]
    for kind, block_size, expected in [("block_causal", 4, 4), ("prefix_full", 1, 24)]:
        cfg = make_tiny_config(attention_mask_kind=kind, block_size=block_size)
        _, models = timing._timing_models(cfg, [spec], 24, lambda _: None)["diffusion_t8"]
        shape = split_model(models.model)[2]
        assert shape.attention_mask_kind == "block_causal" and shape.block_size == expected
        assert shape.max_len == 24


@pytest.mark.slow
def test_the_speed_evaluator_times_diffusion_rows_at_batch_1_and_a_large_batch():
    cfg = make_tiny_config(attention_mask_kind="block_causal", block_size=4)
    specs = decoders.lookup(["ar_cache", "diffusion_t2", "diffusion_conf_t2", "diffusion_t16"])
    rows = timing.time_decoders(
        cfg, specs, [(1, 4, 8), (8, 4, 8)], repeats=1, no_cache_max_length=12, log=lambda _: None
    )
    timed = {(row["decoder"], row["batch_size"]): row for row in rows}
    assert set(timed) == {(s.id, b) for s in specs for b in (1, 8)}
    row = timed["diffusion_t2", 8]
    assert row["family"] == "diffusion" and row["new_tokens"] == 8
    assert row["tokens_per_s"] == pytest.approx(8 * 8 / row["latency_s"])
    # Each diffusion row holds its calls per block: T = 2 calls both steps; at T = 16 a block of
    # 4 unmasks its tokens at 4 steps at most per row, so one row skips at least 12 of its 16.
    assert "calls_per_block" not in timed["ar_cache", 1]
    assert timed["diffusion_t2", 1]["calls_per_block"] == 2
    assert 1 <= timed["diffusion_t16", 1]["calls_per_block"] <= 4
    assert timed["diffusion_t16", 8]["calls_per_block"] <= 16


def test_own_length_rows_are_scored_where_the_model_finds_a_length():
    """A block model finds its length at its first EOS (no length head); a one-block model needs
    its length head; mask-predict's own-length rows need a length head whatever the mask."""
    own = ["diffusion_t8_lb1", "diffusion_t8_p90_lb1", "diffusion_t8"]
    run = _run(COPY, "block_causal", block_size=2)
    settings = run.config.eval.with_overrides({"decoders": tuple(own)})
    found = scoring.scored_decoders(run, settings, False, lambda _: None)
    assert [spec.id for spec, _ in found] == own
    row, mask_predict = (
        decoders.DECODERS["diffusion_t8_lb1"],
        decoders.DECODERS["mask_predict_k4_lb1"],
    )
    block = make_tiny_config(attention_mask_kind="block_causal", block_size=2)
    one_block = make_tiny_config(attention_mask_kind="prefix_full")
    headed = make_tiny_config(attention_mask_kind="prefix_full", length_head=True)
    assert row.finds_length(block) and not row.finds_length(one_block) and row.finds_length(headed)
    assert not mask_predict.finds_length(block) and mask_predict.finds_length(headed)
    assert decoders.DECODERS["diffusion_t8"].finds_length(one_block)  # Given the length.
