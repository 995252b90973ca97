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


def _judges(results: dict) -> set[str]:
    """The variants that judge others' samples (eval.diffusion.ar_variant): no candidates."""
    return {
        judge
        for r in results.get("variants", [])
        if (judge := r.get("config", {}).get("eval", {}).get("diffusion", {}).get("ar_variant"))
    }


# Candidates whose training cost is within this factor of the cheapest one's share one budget.
BUDGET_TOLERANCE = 1.5


def _training_costs(found: list[dict]) -> list[float]:
    """Each record's training compute on the most faithful axis every one of them has: FLOPs,
    then logged seconds (results.json `train_cost`), then steps."""
    for key in ("flops", "seconds"):
        costs = [(r.get("train_cost") or {}).get(key) for r in found]
        if all(costs):
            return costs
    return [r.get("num_steps") or 0 for r in found]


def equal_budgets(results: dict) -> set[str]:
    """The candidates of BD3-LM's ordering at one budget: not a judge, not warm-started
    (train.init_from: its source's training too), and trained within BUDGET_TOLERANCE of the
    cheapest candidate's compute (equal CPU budgets give a block model half AR's steps; a
    variant trained 4x longer, to read the gap against compute, is not ranked against them)."""
    judges = _judges(results)
    found = [
        r for r in results.get("variants", [])
        if place(r) is not None and r["name"] not in judges
        and not r.get("config", {}).get("train", {}).get("init_from")
    ]  # fmt: skip
    costs = _training_costs(found)
    least = min((c for c in costs if c), default=0)
    return {r["name"] for r, c in zip(found, costs, strict=True) if c <= BUDGET_TOLERANCE * least}


def likelihood_order(results: dict, spec: dict, rule: dict) -> list[str]:
    """Per task, the variants in BD3-LM's ordering of bits per token with their means, and
    whether it holds: a pair in reverse order breaks it only when its gap is over 2 sem. Only
    the candidates at one budget are ranked (`equal_budgets`)."""
    metric, tasks = spec["name"], {}
    ranked_names = equal_budgets(results)
    for r in results.get("variants", []):
        found = place(r)
        if found is not None and metric in r["metrics"] and r["name"] in ranked_names:
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


# The compute axes a learning curve may hold, most faithful first: FLOPs (the same on any
# machine), the training seconds this machine took, the steps.
AXES = (
    ("flops", lambda x: f"{x / 1e12:,.1f} TFLOP of training"),
    ("seconds", lambda x: f"{x / 60:.1f} training minutes"),
    ("steps", lambda x: f"step {x:g}"),
)


def _at(curve: dict, x: float, axis: str) -> tuple[float, float]:
    """(bits per token, sem) of a learning curve at compute `x` on `axis`, linearly between its
    checkpoints."""
    sems = [sem or 0.0 for sem in curve["sems"]]
    return float(np.interp(x, curve[axis], curve["values"])), float(np.interp(x, curve[axis], sems))


def _gap(ar: tuple[float, float], other: tuple[float, float]) -> tuple[float, float]:
    """(other's bits over AR's, minus 1, its sem), from each one's (bits, sem), independent."""
    (a, sa), (d, sd) = ar, other
    ratio = d / a
    return ratio - 1.0, ratio * math.hypot(sd / d, sa / a)


def _relative_gap(ar: dict, other: dict, x: float, axis: str) -> tuple[float, float]:
    """`_gap` of two learning curves at compute `x`."""
    return _gap(_at(ar, x, axis), _at(other, x, axis))


def _next_token_curves(curves: dict, task: str, judges: set) -> list[tuple[str, dict, bool]]:
    """(name, curve, is a judge) of every exact next-token model on `task` with a curve."""
    return [
        (name, curve, name in judges)
        for name, (r, curve) in curves.items()
        if place(r) == (1, "AR") and r["task"] == task
    ]


def _gap_beyond(name: str, curve: dict, peers: list, axis: str, unit) -> str | None:
    """The gap at the end of a diffusion curve trained beyond the AR candidate's budget (MDLM at
    4x its steps), read against the next-token model whose training ended nearest it in compute
    (within BUDGET_TOLERANCE; the experiment's judge, say: AR's recipe at 4x its steps), each at
    its own last checkpoint; None where none ended near it."""
    end = curve[axis][-1]
    near = [
        (abs(math.log(c[axis][-1] / end)), peer, c) for peer, c, _ in peers
        if c[axis][-1] and 1 / BUDGET_TOLERANCE <= c[axis][-1] / end <= BUDGET_TOLERANCE
    ]  # fmt: skip
    if not near:
        return None
    _, peer, ar = min(near, key=lambda entry: entry[0])
    gap, sem = _gap(*((c["values"][-1], c["sems"][-1] or 0.0) for c in (ar, curve)))
    return (
        f"{name}: bits per token {100 * gap:+.0f}% ± {100 * sem:.0f} against {peer} (a next-token "
        f"model trained to about its compute) at {unit(end)} against {unit(ar[axis][-1])}."
    )


def gap_with_compute(results: dict, spec: dict, rule: dict) -> list[str]:
    """Per diffusion variant beside the AR candidate on the same task (not a judge), both with a
    likelihood learning curve (evaluation/learning_curve.py): its bits per token relative to
    AR's at the least and the most compute both reached (training FLOPs where every curve
    logged them, else seconds, else steps), and whether the relative gap narrows (its size
    shrinks) with compute, ± its sem. A variant trained well beyond the AR candidate's compute
    is also read at its end against the next-token model nearest it in compute (`_gap_beyond`)."""
    judges = _judges(results)
    curves = {
        r["name"]: (r, r["pictures"]["learning_curve"])
        for r in results.get("variants", [])
        if ((r.get("pictures") or {}).get("learning_curve") or {}).get("metric") == METRIC
    }
    axis, unit = next(
        (name, unit) for name, unit in AXES
        if all(None not in (c.get(name) or [None]) for _, c in curves.values())
    )  # fmt: skip
    out = []
    for name, (record, curve) in curves.items():
        if record.get("model_kind") != "diffusion":
            continue
        peers = _next_token_curves(curves, record["task"], judges)
        ar = next((c for _, c, judge in peers if not judge), None)
        if ar is None:
            continue
        low, high = max(ar[axis][0], curve[axis][0]), min(ar[axis][-1], curve[axis][-1])
        if high > low:
            out.append(_gap_along(name, ar, curve, (low, high), axis, unit))
        if curve[axis][-1] > BUDGET_TOLERANCE * ar[axis][-1]:
            beyond = _gap_beyond(name, curve, peers, axis, unit)
            out += [beyond] if beyond else []
    return out


def _gap_along(name: str, ar: dict, curve: dict, span: tuple, axis: str, unit) -> str:
    """The relative gap at the least and the most compute both curves reached, and its trend."""
    low, high = span
    early, late = _relative_gap(ar, curve, low, axis), _relative_gap(ar, curve, high, axis)
    change = (abs(late[0]) - abs(early[0]), math.hypot(early[1], late[1]))
    trend = "narrows" if change[0] < 0 else "widens"
    if abs(change[0]) <= 2 * change[1]:
        trend = "does not change beyond noise"
    return (
        f"{name}: bits per token {100 * early[0]:+.0f}% ± {100 * early[1]:.0f} against AR at "
        f"{unit(low)}, {100 * late[0]:+.0f}% ± {100 * late[1]:.0f} at {unit(high)}: the "
        f"relative gap {trend} ({100 * change[0]:+.0f} ± {100 * change[1]:.0f} points)."
    )
