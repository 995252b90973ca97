"""What the verdict rules, tables and figures read of a results dict's variant records, and of
the decoders they name.

A per-decoder metric is stored as `<metric>/<decoder id>` (`exact_match/ar_cache`): `per_decoder`
is the one place that splits such a key. What a decoder is (its label, family, parameters) is read
from results["decoders"], never from its id.
"""

import math

from evaluation.report.numbers import sem_of


def per_decoder(metrics: dict, name: str) -> dict[str, dict]:
    """Decoder id -> its `name` metric, from the `<name>/<decoder id>` keys of `metrics`."""
    found = {}
    for key, metric in metrics.items():
        metric_name, _, decoder = key.partition("/")
        if metric_name == name and decoder:
            found[decoder] = metric
    return found


def decoders_of(record: dict) -> list[str]:
    """The decoders scored on a variant, in the order of its metrics."""
    return list(per_decoder(record["metrics"], "exact_match"))


def label_of(results: dict, decoder: str) -> str:
    """A decoder's label for people (its id when results do not list it)."""
    return results.get("decoders", {}).get(decoder, {}).get("label", decoder)


def family_of(results: dict, decoder: str) -> str:
    """ "AR", "non-AR" or "exact-parallel" from results["decoders"]; "—" when it is not listed."""
    return results.get("decoders", {}).get(decoder, {}).get("family", "—")


def params_of(results: dict, decoder: str) -> dict:
    """A decoder's parameters (DecoderSpec.params: iterations, length_beam, steps, strategy, ...)
    from results["decoders"]; {} when results do not list them (written before they existed)."""
    return results.get("decoders", {}).get(decoder, {}).get("params") or {}


def example_sem(metric: dict) -> float:
    """The metric's sem (numbers.sem_of: seeds and examples combined), else 0."""
    return sem_of(metric) or 0.0


def difference(a: dict, b: dict) -> tuple[float, float]:
    """(a − b, its sem): the two metrics' `example_sem`s combined as independent; where both
    were scored on the same examples their errors correlate positively, and this bounds the
    paired sem from above."""
    return a["mean"] - b["mean"], math.hypot(example_sem(a), example_sem(b))


def with_noise(diff: float, sem: float, decimals: int = 1) -> str:
    """'+1.2 ± 0.3' (to `decimals` places), and ', within noise' when |diff| <= 2 sem
    (unmeasured sems count as 0)."""
    noise = ", within noise" if abs(diff) <= 2 * sem else ""
    return f"{diff:+.{decimals}f} ± {sem:.{decimals}f}{noise}"


def baseline_of(results: dict, record: dict) -> dict | None:
    """The record of the AR variant a non-AR variant is compared with (`eval.nar.ar_variant`)."""
    by_name = {r["name"]: r for r in results.get("variants", [])}
    return by_name.get(record.get("baseline") or "")


def distilled(record: dict) -> bool:
    """Whether the variant trained on a teacher's outputs (data.distilled_dir)."""
    return bool(record.get("config", {}).get("data", {}).get("distilled_dir"))
