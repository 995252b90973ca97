"""The verdict on BD3-LM's ordering of bits per token (evaluation/likelihood.py): AR ≤ block
diffusion, smaller blocks first, ≤ MDLM (Arriola et al. 2025).

`rules.RULES` registers it as "likelihood_order" (scope "experiment"), and "gap_with_compute":
each diffusion variant's bits per token relative to AR's along their learning curves, and
whether that relative gap narrows with compute (Nie et al. 2024 find it largest early).

Every variant is scored on the same held-out rows, so a pair in reverse order is judged by the
paired difference of its bits per token over those rows (`bits_difference`: report/paired.py's ratio
estimator, seed by seed, from the [nats, tokens] per row that results.json keeps under the variant's
`sentences`), and breaks the ordering only when that difference is over 2 sem. Results without the
rows, or with other seeds or rows, fall back to the two sems combined as independent, an upper
bound.
"""

import math

import numpy as np

from evaluation.report.paired import over_seeds, paired_ratio
from evaluation.report.records import difference, with_noise

METRIC = "likelihood_bits"  # The per-row statistics' key in `sentences`: [nats, tokens].


def bits_difference(a: dict, b: dict, metric: str = METRIC) -> tuple[float, float]:
    """(a's bits per token − b's, its sem): paired over the same rows seed by seed where both
    records hold each row's [nats, tokens] for as many seeds and rows; else
    `records.difference` (independent sems, an upper bound)."""
    seeds_a = (a.get("sentences") or {}).get(metric) or []
    seeds_b = (b.get("sentences") or {}).get(metric) or []
    paired = over_seeds(seeds_a, seeds_b, paired_ratio)
    if paired is None:
        return difference(a["metrics"][metric], b["metrics"][metric])
    return paired[0] / math.log(2.0), paired[1] / math.log(2.0)


def place(record: dict) -> tuple[float, str] | None:
    """(block size, label) in BD3-LM's ordering: AR is 1, one-block diffusion (MDLM) infinite;
    None for a variant outside it (a leaky AR model, CMLM)."""
    kind = record.get("model_kind")
    if kind == "next_token":
        return (1, "AR") if record.get("exact_mask") else None
    if kind != "diffusion":
        return None
    size = record.get("block_size")
    return (size, f"block {size}") if size else (math.inf, "MDLM")


def _verdict(ranked: list[tuple], metric: str) -> str:
    """Whether the ordering of `ranked` ((block size, label, name, record), by block size)
    holds, each reversed pair with its paired difference ± sem."""
    reversed_pairs = [
        (a[2], b[2], bits_difference(a[3], b[3], metric))
        for i, a in enumerate(ranked) for b in ranked[i + 1 :]
        if b[0] > a[0] and a[3]["metrics"][metric]["mean"] > b[3]["metrics"][metric]["mean"]
    ]  # fmt: skip
    if not reversed_pairs:
        return "holds"
    pairs = "; ".join(
        f"{a} is above {b} by {with_noise(*gap, decimals=3)}" for a, b, gap in reversed_pairs
    )
    broken = any(gap[0] > 2 * gap[1] for _, _, gap in reversed_pairs)
    return f"does not hold ({pairs})" if broken else f"holds within noise ({pairs})"


def likelihood_order(results: dict, spec: dict, rule: dict) -> list[str]:
    """Per task, the variants in BD3-LM's ordering of bits per token with their means, and
    whether it holds: a pair in reverse order breaks it only when its gap is over 2 sem."""
    metric, tasks = spec["name"], {}
    for r in results.get("variants", []):
        found = place(r)
        if found is not None and metric in r["metrics"]:
            tasks.setdefault(r["task"], []).append((*found, r["name"], r))
    out = []
    for task, ranked in tasks.items():
        ranked.sort(key=lambda entry: entry[0])
        if len({entry[0] for entry in ranked}) < 2:
            continue
        listing = ", ".join(
            f"{name} ({label}) {r['metrics'][metric]['mean']:.3g}" for _, label, name, r in ranked
        )
        given = [
            name for _, _, name, r in ranked
            if r["metrics"].get(rule["given_length"], {}).get("mean")
        ]  # fmt: skip
        caveat = f"; {', '.join(given)} given the length, not AR's quantity" if given else ""
        out.append(
            f"On {task}: {listing} bits per token; BD3-LM's ordering (AR ≤ smaller blocks ≤ "
            f"larger blocks ≤ MDLM) {_verdict(ranked, metric)}{caveat}."
        )
    return out


def _at(curve: dict, x: float, timed: bool) -> tuple[float, float]:
    """(bits per token, sem) of a learning curve at compute `x` (training seconds when `timed`,
    else steps), linearly between its checkpoints."""
    xs = curve["seconds"] if timed else curve["steps"]
    sems = [sem or 0.0 for sem in curve["sems"]]
    return float(np.interp(x, xs, curve["values"])), float(np.interp(x, xs, sems))


def _relative_gap(ar: dict, other: dict, x: float, timed: bool) -> tuple[float, float]:
    """(other's bits over AR's, minus 1, its sem) at compute `x` (the two sems independent)."""
    (a, sa), (d, sd) = _at(ar, x, timed), _at(other, x, timed)
    ratio = d / a
    return ratio - 1.0, ratio * math.hypot(sd / d, sa / a)


def gap_with_compute(results: dict, spec: dict, rule: dict) -> list[str]:
    """Per diffusion variant beside an AR one on the same task, both with a likelihood learning
    curve (evaluation/learning_curve.py): its bits per token relative to AR's at the least and
    the most compute both reached (training time where every curve logged it, else steps), and
    whether the relative gap narrows with compute, ± its sem."""
    curves = {
        r["name"]: (r, r["pictures"]["learning_curve"])
        for r in results.get("variants", [])
        if ((r.get("pictures") or {}).get("learning_curve") or {}).get("metric") == METRIC
    }
    timed = all(None not in (c.get("seconds") or [None]) for _, c in curves.values())
    out = []
    for name, (record, curve) in curves.items():
        if record.get("model_kind") != "diffusion":
            continue
        same_task = [c for r, c in curves.values() if r["task"] == record["task"]]
        ar = next((c for r, c in curves.values() if place(r) == (1, "AR") and c in same_task), None)
        if ar is None:
            continue
        axis = "seconds" if timed else "steps"
        low = max(ar[axis][0], curve[axis][0])
        high = min(ar[axis][-1], curve[axis][-1])
        if high <= low:
            continue
        early, late = _relative_gap(ar, curve, low, timed), _relative_gap(ar, curve, high, timed)
        change = (late[0] - early[0], math.hypot(early[1], late[1]))
        trend = "narrows" if change[0] < 0 else "widens"
        if abs(change[0]) <= 2 * change[1]:
            trend = "does not change beyond noise"
        unit = (lambda x: f"{x / 60:.1f} training minutes") if timed else (lambda x: f"step {x:g}")
        out.append(
            f"{name}: bits per token {100 * early[0]:+.0f}% ± {100 * early[1]:.0f} against AR at "
            f"{unit(low)}, {100 * late[0]:+.0f}% ± {100 * late[1]:.0f} at {unit(high)}: the "
            f"relative gap {trend} ({100 * change[0]:+.0f} ± {100 * change[1]:.0f} points)."
        )
    return out
