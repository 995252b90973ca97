"""The verdict rules of samples judged without a reference (evaluation/decoders/diffusion.py):
their generative NLL under the experiment's AR model, read with their entropy.

`rules.RULES` registers them: "sample_quality" (scope "decoder", one sentence per scored
sampler) and "parallel_steps" (scope "experiment": what fewer denoising steps cost, per
variant, against AR sampling).
"""

import re

from evaluation.report.numbers import fmt_value
from evaluation.report.records import example_sem, family_of, label_of


def _with_sem(metric: dict) -> str:
    return f"{fmt_value(metric['mean'], 'number')} ± {fmt_value(example_sem(metric), 'number')}"


def _steps(decoder: str) -> int | None:
    """T of a diffusion row id (`diffusion_t8`, `diffusion_conf_t32`); None otherwise."""
    found = re.fullmatch(r"diffusion(?:_conf)?_t(\d+)", decoder)
    return int(found.group(1)) if found else None


def _ar_samples(results: dict) -> dict[str, tuple[str, dict]]:
    """Task -> (variant, its `gen_nll` metric) of the AR sampler (family AR) per task."""
    found = {}
    for record in results.get("variants", []):
        for key, metric in record["metrics"].items():
            if key.startswith("gen_nll/") and family_of(results, key[8:]) == "AR":
                found.setdefault(record["task"], (record["name"], metric))
    return found


def sample_quality(results: dict, record: dict, decoder: str, rule: dict) -> list[str]:
    """A sampler's generative NLL and entropy; a diffusion sampler's against AR sampling's."""
    metrics = record["metrics"]
    entropy = metrics.get(f"sample_entropy/{decoder}")
    nll = metrics.get(f"gen_nll/{decoder}")
    text = f"{record['name']}: {label_of(results, decoder)} samples"
    if nll is not None:
        text += f" have a generative NLL of {_with_sem(nll)} nats per token"
    if entropy is not None:
        joiner = " and" if nll is not None else " have"
        text += f"{joiner} an entropy of {fmt_value(entropy['mean'], 'number')} nats"
    ar = _ar_samples(results).get(record["task"])
    if nll is not None and ar is not None and family_of(results, decoder) != "AR":
        gap = nll["mean"] - ar[1]["mean"]
        text += f"; {fmt_value(abs(gap), 'number')} {'above' if gap > 0 else 'below'} AR sampling"
    return [text + "."]


def parallel_steps(results: dict, spec: dict, rule: dict) -> list[str]:
    """Per variant, the generative NLL of its ancestral sampler at the fewest and the most
    denoising steps T, and AR sampling's: what parallel steps cost."""
    ar = _ar_samples(results)
    out = []
    for record in results.get("variants", []):
        by_steps = {
            _steps(key[8:]): metric
            for key, metric in record["metrics"].items()
            if key.startswith("gen_nll/") and key.startswith(f"gen_nll/{rule['prefix']}")
            and _steps(key[8:]) is not None
        }  # fmt: skip
        if len(by_steps) < 2:
            continue
        few, many = min(by_steps), max(by_steps)
        text = (
            f"{record['name']}: with T={few} denoising steps per block its samples' generative "
            f"NLL is {_with_sem(by_steps[few])}, with T={many} {_with_sem(by_steps[many])} nats "
            "per token"
        )
        if record["task"] in ar:
            name, metric = ar[record["task"]]
            text += f" (AR sampling, {name}: {_with_sem(metric)})"
        out.append(text + ".")
    return out
