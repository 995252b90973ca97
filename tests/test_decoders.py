"""The decoders table (evaluation/decoders.py): lookup, selection, and a new decoder reaching
the report's quality, speed and verdict tables through one `register` call."""

import numpy as np
import pytest

from data import vocab
from evaluation import decoders, environment, report, runner
from evaluation.runner import experiment_eval_config

FAKE = "fake copier"


def _copier(models: decoders.Models, prompts: decoders.Prompts) -> decoders.GenerateOutput:
    """Writes each prompt's source (BOS source SEP), then EOS: the right answer on copy."""
    B, P = prompts.prompts_BxP.shape
    tokens_BxL = np.zeros((B, P + prompts.max_new_tokens), np.int32)
    lengths_B = np.zeros(B, np.int32)
    for b, p in enumerate(prompts.prompt_lengths_B):
        source = prompts.prompts_BxP[b, 1 : p - 1][: prompts.max_new_tokens - 1]
        row = np.concatenate([prompts.prompts_BxP[b, :p], source, [vocab.EOS]])
        tokens_BxL[b, : len(row)], lengths_B[b] = row, len(row)
    return decoders.GenerateOutput(tokens_BxL, lengths_B)


def test_lookup_names_unknown_decoders_and_the_table():
    assert [s.name for s in decoders.lookup(["AR (cache)"])] == ["AR (cache)"]
    with pytest.raises(ValueError, match=r"Unknown decoders \['AR \(cahce\)'\].*AR \(cache\)"):
        decoders.lookup(["AR (cahce)"])


def test_each_variant_gets_the_decoders_that_are_exact_or_honest_for_it():
    def names(*args):
        return [s.name for s in decoders.scored_on(*args)]

    exact_parallel = [
        "Jacobi (block 4)", "speculative (AR draft, 4)", "speculative (CMLM draft, 8)"
    ]  # fmt: skip
    assert names("causal", "teacher_forcing") == ["AR (cache)", *exact_parallel]
    assert names("prefix", "sequential") == ["AR (cache)", *exact_parallel]
    assert names("full", "teacher_forcing") == ["AR (no cache, honest)", "AR (cache, naive)"]
    oracle = [f"mask-predict K={k}" for k in (1, 2, 4, 8)]
    predicted = [
        f"mask-predict K={k}, predicted length (beam {b})" for k, b in ((1, 1), (4, 1), (4, 3))
    ]
    assert names("prefix_full", "masked") == oracle + predicted
    assert names("full", "glancing") == oracle + predicted
    assert names("prefix_full", "masked", ("mask-predict K=4",)) == ["mask-predict K=4"]
    with pytest.raises(ValueError, match="family"):
        decoders.DecoderSpec("x", "semi-AR", "", _copier, lambda m, o: True, None)


def test_a_registered_decoder_appears_in_the_quality_speed_and_verdict_tables(
    tiny_workdir, monkeypatch
):
    spec = decoders.DecoderSpec(
        name=FAKE,
        family="exact-parallel",
        description="Copies the source: a test decoder.",
        decode=_copier,
        applies_to=lambda mask_kind, objective: mask_kind == "causal",
        timing_mask="causal",
    )
    monkeypatch.setitem(decoders.DECODERS, FAKE, spec)
    eval_config = experiment_eval_config(tiny_workdir)
    eval_config.speed.decoders = ("AR (cache)", FAKE)
    monkeypatch.setattr(runner, "experiment_eval_config", lambda workdir: eval_config)
    results = runner.evaluate_workdir(
        tiny_workdir,
        variants=["causal"],
        evaluators=["quality", "speed"],
        log=lambda _: None,
    )
    results.update(environment.describe("."))
    causal = results["variants"][0]
    assert causal["metrics"][f"exact_match/{FAKE}"]["mean"] == 1.0  # It is the copy answer.
    assert results["decoders"][FAKE]["family"] == "exact-parallel"
    assert {row["decoder"] for row in results["speed"]["sampling"]} == {"AR (cache)", FAKE}
    markdown = report.render(results)["report.md"]
    quality_rows = [line for line in markdown.splitlines() if line.startswith(f"| causal | {FAKE}")]
    speed_rows = [line for line in markdown.splitlines() if line.startswith(f"| {FAKE} |")]
    assert len(quality_rows) == 1 and len(speed_rows) == 2  # Batch 1 and the large batch.
    assert f"causal: {FAKE} exact match 100.0% on copy." in report.verdicts(results)
