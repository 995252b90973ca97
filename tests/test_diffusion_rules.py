"""The verdict rules of reference-free samples (evaluation/report/diffusion_rules.py), on
hand-made results: they read a sampler's steps and strategy from its params, never its id."""

import copy
import dataclasses

import pytest

from evaluation import decoders
from evaluation.decoders import diffusion
from evaluation.report import diffusion_rules

PARALLEL_STEPS = diffusion.METRICS[0].verdicts[0]  # The rule the gen_nll metric carries.


def _metric(mean, sem=0.01):
    return {"mean": mean, "sem": None, "n_seeds": 1, "per_seed": [mean], "per_seed_sem": [sem]}


RESULTS = {
    "decoders": {
        "ar_sample": {"label": "AR (cache, sampled)", "family": "AR", "params": {}},
        "diffusion_t2": {
            "label": "diffusion T=2",
            "family": "diffusion",
            "params": {"steps": 2, "strategy": "ancestral"},
        },
        "diffusion_t32": {
            "label": "diffusion T=32",
            "family": "diffusion",
            "params": {"steps": 32, "strategy": "ancestral"},
        },
        "diffusion_conf_t8": {
            "label": "diffusion T=8, most confident first",
            "family": "diffusion",
            "params": {"steps": 8, "strategy": "confidence"},
        },
    },
    "variants": [
        {
            "name": "ar",
            "task": "text",
            "metrics": {
                "gen_nll/ar_sample": _metric(1.5),
                "sample_entropy/ar_sample": _metric(3.1),
            },
        },
        {
            "name": "mdlm",
            "task": "text",
            "metrics": {
                "gen_nll/diffusion_t2": _metric(2.75),
                "gen_nll/diffusion_t32": _metric(2.0),
                "gen_nll/diffusion_conf_t8": _metric(1.2),
                "sample_entropy/diffusion_t2": _metric(3.3),
            },
        },
    ],
}


def test_a_sampler_is_set_against_ar_sampling():
    (line,) = diffusion_rules.sample_quality(RESULTS, RESULTS["variants"][1], "diffusion_t2", {})
    assert line.startswith("mdlm: diffusion T=2 samples have a generative NLL of 2.75 ± 0.01")
    assert "an entropy of 3.3 nats" in line and "1.25 above AR sampling" in line
    (ar_line,) = diffusion_rules.sample_quality(RESULTS, RESULTS["variants"][0], "ar_sample", {})
    assert "AR sampling" not in ar_line  # AR is not set against itself.


def test_parallel_steps_names_the_fewest_and_most_steps_of_the_ancestral_sampler():
    lines = diffusion_rules.parallel_steps(RESULTS, {}, PARALLEL_STEPS)
    assert lines == [
        "mdlm: with T=2 denoising steps per block its samples' generative NLL is 2.75 ± 0.01, "
        "with T=32 2 ± 0.01 nats per token (AR sampling, ar: 1.5 ± 0.01)."
    ]


@pytest.fixture
def renamed_samplers():
    """Diffusion rows registered under ids that name neither their steps nor their strategy."""
    rows = (
        ("mdlm_quick", 4, "ancestral"),
        ("mdlm_thorough", 64, "ancestral"),
        ("llada_like", 1, "confidence"),  # Fewer steps, but not the ancestral sampler.
    )
    specs = [
        decoders.register(
            dataclasses.replace(diffusion.diffusion_spec(T, strategy), id=id_, label=f"{id_} T")
        )
        for id_, T, strategy in rows
    ]
    yield specs
    for spec in specs:
        del decoders.DECODERS[spec.id]


def test_parallel_steps_reads_the_spec_params_not_the_id(renamed_samplers):
    results = copy.deepcopy(RESULTS)
    results["decoders"] |= decoders.describe(renamed_samplers)["decoders"]
    results["variants"][1]["metrics"] = {
        "gen_nll/mdlm_quick": _metric(3.0),
        "gen_nll/mdlm_thorough": _metric(2.5),
        "gen_nll/llada_like": _metric(9.0),
    }
    assert diffusion_rules.parallel_steps(results, {}, PARALLEL_STEPS) == [
        "mdlm: with T=4 denoising steps per block its samples' generative NLL is 3 ± 0.01, "
        "with T=64 2.5 ± 0.01 nats per token (AR sampling, ar: 1.5 ± 0.01)."
    ]


def test_results_without_decoder_params_skip_parallel_steps():
    """results.json written before decoders had params, and its rule named an id prefix."""
    results = copy.deepcopy(RESULTS)
    for info in results["decoders"].values():
        del info["params"]
    assert diffusion_rules.parallel_steps(results, {}, {"prefix": "diffusion_t"}) == []
    (line,) = diffusion_rules.sample_quality(results, results["variants"][1], "diffusion_t2", {})
    assert "1.25 above AR sampling" in line
