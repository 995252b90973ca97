"""The verdict rules of samples judged without a reference (evaluation/decoders/diffusion.py):
their generative NLL under the experiment's AR model, read with their entropy.

`rules.RULES` registers them: "sample_quality" (scope "decoder", one sentence per scored
sampler) and "parallel_steps" (scope "experiment": what fewer denoising steps cost, per
variant, against AR sampling). A sampler's steps T and strategy are its params in
results["decoders"].
"""

from evaluation.report.numbers import fmt_value
from evaluation.report.records import example_sem, family_of, label_of, params_of, per_decoder


def _with_sem(metric: dict) -> str:
    return f"{fmt_value(metric['mean'], 'number')} ± {fmt_value(example_sem(metric), 'number')}"


def _ar_samples(results: dict) -> dict[str, tuple[str, dict]]:
    """Task -> (variant, its `gen_nll` metric) of the AR sampler (family AR) per task."""
    found = {}
    for record in results.get("variants", []):
        for decoder, metric in per_decoder(record["metrics"], "gen_nll").items():
            if family_of(results, decoder) == "AR":
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
    """Per variant, the generative NLL of its sampler of rule["strategy"] (the ancestral one) at
    the fewest and the most denoising steps T, and AR sampling's: what parallel steps cost."""
    ar = _ar_samples(results)
    out = []
    for record in results.get("variants", []):
        by_steps = {}
        for decoder, metric in per_decoder(record["metrics"], "gen_nll").items():
            params = params_of(results, decoder)
            if (
                params.get("steps") is not None
                and params.get("strategy") == rule.get("strategy")
                and params.get("top_p") is None  # The plain sampler's rows: one per T,
                and params.get("length_beam") is None  # at the reference's length.
            ):
                by_steps[params["steps"]] = metric
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
