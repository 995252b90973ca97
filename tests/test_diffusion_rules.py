"""The verdict rules of reference-free samples (evaluation/report/diffusion_rules.py), on
hand-made results."""

from evaluation.report import diffusion_rules


def _metric(mean, sem=0.01):
    return {"mean": mean, "sem": None, "n_seeds": 1, "per_seed": [mean], "per_seed_sem": [sem]}


RESULTS = {
    "decoders": {
        "ar_sample": {"label": "AR (cache, sampled)", "family": "AR"},
        "diffusion_t2": {"label": "diffusion T=2", "family": "diffusion"},
        "diffusion_t32": {"label": "diffusion T=32", "family": "diffusion"},
        "diffusion_conf_t8": {
            "label": "diffusion T=8, most confident first",
            "family": "diffusion",
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
    lines = diffusion_rules.parallel_steps(RESULTS, {}, {"prefix": "diffusion_t"})
    assert lines == [
        "mdlm: with T=2 denoising steps per block its samples' generative NLL is 2.75 ± 0.01, "
        "with T=32 2 ± 0.01 nats per token (AR sampling, ar: 1.5 ± 0.01)."
    ]
