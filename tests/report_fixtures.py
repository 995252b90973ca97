"""A hand-made results dict (schema 3) for the report's tests: a causal, a full-mask and a CMLM
variant on copy, timed rows (batch 1 over two lengths, and a batch sweep), and the metric and
table descriptions the real evaluators give."""

import copy

import numpy as np

from evaluation import decoders, runner
from evaluation.report.schema import SCHEMA_VERSION
from model.masks import mask_kind
from objectives import objective_of

FIGURES = {
    "dependency_maps.png",
    "attention_maps.png",
    "losses.png",
    "loss_curves.png",
    "sampling_speed.png",
    "speedup_by_batch.png",
    "quality_latency.png",
    "training_speed.png",
}
FAKE = "fake_decoder"  # An exact-parallel decoder that needs a second model.
DECODERS = {
    "ar_cache": {"label": "AR (cache)", "description": "Greedy, with a *KV cache*."},
    "ar_no_cache": {"label": "AR (no cache, honest)", "description": "Recomputes all."},
    "mask_predict_k1": {"label": "mask-predict K=1", "description": "One pass."},
    "mask_predict_k4": {"label": "mask-predict K=4", "description": "Four passes."},
}
DECODERS = {
    name: {
        "family": decoders.DECODERS[name].family,
        "needs": None,
        "params": decoders.DECODERS[name].params.to_json(),
        **info,
    }
    for name, info in DECODERS.items()
}
DECODERS[FAKE] = {
    "label": "fake decoder",
    "family": "exact-parallel",
    "needs": "draft",
    "description": "Made up.",
    "params": {"draft": "ar", "draft_tokens": 4},
}


def metric(mean, sem=None, example_sem=None, per_seed=None) -> dict:
    per_seed = per_seed or [mean]
    return {
        "mean": mean,
        "sem": sem,
        "n_seeds": len(per_seed),
        "per_seed": per_seed,
        "per_seed_sem": [example_sem] * len(per_seed),
    }


def _pictures(seed):
    rng = np.random.default_rng(seed)
    return {
        "dependency_map": np.tril(rng.random((5, 5))).tolist(),
        "attention": (np.tril(np.ones((2, 5, 5))) / np.arange(1, 6)[:, None]).tolist(),
        "labels": list("^ab|a"),
        "prefix_length": 4,
    }


def record(name, kind, leak, exact_match, losses=None, objective="teacher_forcing") -> dict:
    """A variant's record: leakage, optional losses, exact match per decoder id."""
    metrics = {
        "perturbation_leakage": metric(leak),
        "dependency_future_share": metric(0.0 if leak == 0 else 0.3),
    }
    if losses is not None:
        tf, honest, random_loss = losses
        metrics |= {
            "loss_teacher_forced": metric(tf, example_sem=0.001),
            "loss_honest": metric(honest, example_sem=0.001),
            "leak_gap": metric(honest - tf, example_sem=0.01),
            "random_loss": metric(random_loss, example_sem=0.01),
            "random_floor": metric(float(np.log(16))),
        }
    for decoder, em in exact_match.items():
        metrics[f"exact_match/{decoder}"] = metric(em, example_sem=0.01)
        metrics[f"token_accuracy/{decoder}"] = metric(1.0, example_sem=0.0)
    record = objective_of(objective)
    return {
        "name": name,
        "task": "copy",
        "mask_kind": kind,
        "mask_label": kind,
        "architecture": "decoder",
        "objective": objective,
        "model_kind": record.model_kind,
        "exact_mask": mask_kind(kind).exact_cache,
        "block_size": None,
        "non_ar": not record.next_token,
        "seeds": [0],
        "steps": [40],
        "num_steps": 40,
        "num_params": 123456,
        "config": {},
        "baseline": None,
        "metrics": metrics,
        "signatures": {},
        "samples": {d: [f"^ab|  →  ab$   (reference ab$) {d}"] for d in exact_match},
        "pictures": _pictures(len(name)),
        "curves": {"0": {"train": [[0, 3.0], [10, 1.0]], "eval": [[10, 1.1]], "tokens_per_s": 1e4}},
        "train_tokens_per_s": 1e4,
        "train_cost": {"seconds": 90.0, "flops": 3.0e15},
    }


def sampling_row(decoder, new_tokens, latency_s, batch_size=1, prompt_len=8):
    return {
        "decoder": decoder,
        "family": DECODERS[decoder]["family"],
        "batch_size": batch_size,
        "prompt_len": prompt_len,
        "new_tokens": new_tokens,
        "length": prompt_len + new_tokens,
        "latency_s": latency_s,
        "ms_per_token": 1e3 * latency_s / new_tokens,
        "tokens_per_s": batch_size * new_tokens / latency_s,
        "compile_s": 1.0,
    }


def _speed():
    sampling = [
        sampling_row(decoder, new_tokens, latency_s)
        for decoder, new_tokens, latency_s in [
            ("ar_cache", 56, 0.1),
            ("ar_no_cache", 56, 0.2),
            ("ar_cache", 120, 0.2),
            ("ar_no_cache", 120, 0.8),
            ("mask_predict_k1", 56, 0.02),
            (FAKE, 56, 0.2),
        ]
    ]
    # A batch sweep at 56 new tokens: mask-predict's speed-up (5x at batch 1) is gone at 16.
    sampling += [
        sampling_row(decoder, 56, latency_s, batch_size)
        for decoder, batch_size, latency_s in [
            ("ar_cache", 8, 0.15),
            ("mask_predict_k1", 8, 0.05),
            ("ar_cache", 16, 0.2),
            ("mask_predict_k1", 16, 0.25),
        ]
    ]
    training = [
        {
            "objective": objective,
            "dtype": "float32",
            "seq_len": 64,
            "batch_size": 8,
            "step_time_s": step_s,
            "tokens_per_s": 512 / step_s,
            "compile_s": 1.0,
        }
        for objective, step_s in [("teacher_forcing", 0.01), ("sequential", 0.2)]
    ]
    model = {"num_layers": 2, "d_model": 32, "num_heads": 4, "d_ff": 64, "vocab_size": 23}
    return {
        "variant": "causal",
        "model": model | {"max_len": 128, "attention_mask_kind": "causal"},
        "note": "Random weights; median of 5 runs.",
        "sampling": sampling,
        "training": training,
    }


def make_results() -> dict:
    """A results dict with a causal, a full-mask and a CMLM variant, described as eval.py
    describes them (every evaluator's specs, and the exact-parallel decoders' for FAKE)."""
    nar = record(
        "copy_nar",
        "prefix_full",
        5.0,
        {"mask_predict_k1": 0.9, "mask_predict_k4": 0.996, FAKE: 1.0},
        objective="masked",
    )
    nar["baseline"] = "causal"
    full = record("full", "full", 11.0, {"ar_no_cache": 0.1}, losses=(0.001, 3.9, 0.2))
    used = [decoders.DECODERS["jacobi4"]]  # For the exact-parallel metrics' descriptions.
    return {
        "schema_version": SCHEMA_VERSION,
        "experiment": "unit",
        "workdir": "/x/runs/unit",
        "created": "now",
        "device": {
            "platform": "cpu",
            "kind": "cpu",
            "count": 1,
            "host_cpu": "x86_64",
            "host_cores": 2,
        },
        "commit": "unknown",
        "commit_dirty": None,
        "versions": {"jax": "0"},
        "eval_config": {},
        "decoders": copy.deepcopy(DECODERS),  # Tests may add to it.
        "families": dict(decoders.FAMILIES),
        **runner.descriptions(list(runner.EVALUATORS), used),
        "untrained_variants": [],
        "variants": [
            record("causal", "causal", 0.0, {"ar_cache": 1.0}, losses=(0.02, 0.02, 2.9)),
            full,
            nar,
        ],
        "speed": _speed(),
    }
