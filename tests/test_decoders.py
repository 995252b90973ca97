"""The decoders table (evaluation/decoders/): ids and labels, lookup, selection, and a new decoder
reaching the report's quality, speed and verdict tables through one `register` call."""

import numpy as np
import pytest

from data import vocab
from evaluation import decoders, environment, report, runner
from model.masks import mask_kind
from objectives import objective_of
from sections import experiment_eval
from training import run_folder

FAKE, FAKE_LABEL = "fake_copier", "fake copier"


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


def test_lookup_takes_ids_and_the_labels_saved_configs_hold_and_names_unknown_ones():
    assert [s.id for s in decoders.lookup(["ar_cache", "AR (no cache, honest)"])] == [
        "ar_cache",
        "ar_no_cache",
    ]
    assert decoders.DECODERS["mask_predict_k4"].label == "mask-predict K=4"
    with pytest.raises(ValueError, match=r"Unknown decoders \['ar_cahce'\].*'ar_cache'"):
        decoders.lookup(["ar_cahce"])


def test_ids_are_stable_identifiers_and_labels_unique():
    assert all(spec.id.isidentifier() for spec in decoders.DECODERS.values())
    labels = [spec.label for spec in decoders.DECODERS.values()]
    assert len(labels) == len(set(labels))
    with pytest.raises(ValueError, match="lower-case identifier"):
        decoders.DecoderSpec("AR cache", "x", "AR", "", _copier, lambda m, o: True, None)
    with pytest.raises(ValueError, match="already decoder 'ar_cache'"):
        decoders.register(
            decoders.DecoderSpec("ar_copy", "AR (cache)", "AR", "", _copier, lambda m, o: 1, None)
        )


def test_a_decoders_parameters_are_its_params_which_results_json_keeps():
    params = {
        "ar_cache": {},
        "beam4": {"beams": 4},
        "mask_predict_k10": {"iterations": 10},
        "mask_predict_k4_lb3": {"iterations": 4, "length_beam": 3},
        "diffusion_conf_t32": {"steps": 32, "strategy": "confidence"},
        "jacobi4": {"draft": "jacobi", "draft_tokens": 4},
        "speculative_cmlm8": {"draft": "cmlm", "draft_tokens": 8},
    }
    for decoder, expected in params.items():
        assert decoders.DECODERS[decoder].to_json()["params"] == expected
    described = decoders.describe(decoders.lookup(["beam4", "diffusion_t8"]))
    assert described["decoders"]["beam4"]["params"] == {"beams": 4}
    assert list(described["families"]) == ["AR", "diffusion"]
    with pytest.raises(ValueError, match="strategy must be one of"):
        decoders.Params(steps=8, strategy="greedy")
    with pytest.raises(ValueError, match=r"\['iterations'\] must be >= 1"):
        decoders.Params(iterations=0)


def test_each_variant_gets_the_decoders_that_are_exact_or_honest_for_it():
    def ids(*args):
        mask, objective, *selection = args
        return [
            s.id for s in decoders.scored_on(mask_kind(mask), objective_of(objective), *selection)
        ]

    exact_parallel = ["jacobi4", "speculative_ar4", "speculative_cmlm8"]
    assert ids("causal", "teacher_forcing") == ["ar_cache", *exact_parallel]
    assert ids("prefix", "sequential") == ["ar_cache", *exact_parallel]
    assert ids("full", "teacher_forcing") == ["ar_no_cache", "ar_cache_naive"]
    oracle = [f"mask_predict_k{k}" for k in (1, 2, 4, 8)]
    predicted = ["mask_predict_k1_lb1", "mask_predict_k4_lb1", "mask_predict_k4_lb3"]
    assert ids("prefix_full", "masked") == oracle + predicted
    assert ids("full", "glancing") == oracle + predicted
    assert ids("prefix_full", "masked", ("mask_predict_k4",)) == ["mask_predict_k4"]
    with pytest.raises(ValueError, match="family"):
        decoders.DecoderSpec("x", "x", "semi-AR", "", _copier, lambda m, o: True, None)


@pytest.mark.slow
def test_a_registered_decoder_appears_in_the_quality_speed_and_verdict_tables(
    tiny_workdir, monkeypatch
):
    spec = decoders.DecoderSpec(
        id=FAKE,
        label=FAKE_LABEL,
        family="non-AR",
        description="Copies the source: a test decoder.",
        decode=_copier,
        applies_to=lambda mask_kind, objective: mask_kind.id == "causal",
        timing_mask="causal",
    )
    monkeypatch.setitem(decoders.DECODERS, FAKE, spec)
    saved = run_folder.read_experiment(tiny_workdir)
    assert experiment_eval(saved).speed.decoders != ("ar_cache", FAKE)
    results = runner.evaluate_workdir(
        tiny_workdir,
        variants=["causal"],
        evaluators=["quality", "speed"],
        eval_overrides={"speed.decoders": ("ar_cache", FAKE)},
        log=lambda _: None,
    )
    results.update(environment.describe("."))
    causal = results["variants"][0]
    assert causal["metrics"][f"exact_match/{FAKE}"]["mean"] == 1.0  # It is the copy answer.
    assert results["decoders"][FAKE] == {
        "label": FAKE_LABEL,
        "family": "non-AR",
        "needs": None,
        "description": "Copies the source: a test decoder.",
        "params": {},
    }
    assert {row["decoder"] for row in results["speed"]["sampling"]} == {"ar_cache", FAKE}
    markdown = report.render(results)["report.md"]
    lines = markdown.splitlines()
    quality_rows = [line for line in lines if line.startswith(f"| causal | {FAKE_LABEL} |")]
    speed_rows = [line for line in lines if line.startswith(f"| {FAKE_LABEL} |")]
    assert len(quality_rows) == 1 and len(speed_rows) == 2  # Batch 1 and the large batch.
    assert f"causal: {FAKE_LABEL} exact match 100.0% on copy." in report.verdicts(results)
    speed = next(g for g in report.verdict_groups(results) if g["title"] == "Speed")
    assert any(f"{FAKE_LABEL} takes" in line for line in speed["entries"])
