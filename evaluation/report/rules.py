"""The verdict rules (report/verdicts.py runs them), and what they read of a results dict.

Each rule is a function of the results and of its parameters (the rule dict a MetricSpec or
TableSpec carries), and returns its sentences; `RULES` maps each id to (scope, function), and
`register_rule` adds one. The generic rules ("state", "zero") serve any new metric; the others
are this project's evaluators'.
The rules of the timed tables live in report/speed_rules.py, those of samples judged without a
reference in report/diffusion_rules.py, BD3-LM's likelihood ordering in
report/likelihood_rules.py and the field's translation table in report/translation_rules.py;
all are registered here.
"""

import math

from evaluation.report import diffusion_rules, likelihood_rules, translation_rules
from evaluation.report.numbers import fmt_value
from evaluation.report.records import (
    baseline_of,
    decoders_of,
    example_sem,
    family_of,
    label_of,
)
from evaluation.report.speed_rules import SPEED_RULES


def _relation(value: float, ar: float) -> str:
    """How a score (exact match in %, BLEU) compares with the AR one."""
    gap = value - ar
    if abs(gap) < 0.05:
        return "matches"
    if abs(gap) <= 1:
        return f"is within {abs(gap):.1f} points of"
    return f"is {abs(gap):.1f} points {'above' if gap > 0 else 'below'}"


# Generic rules -----------------------------------------------------------------------------


def _fields(record: dict, spec: dict) -> dict:
    """What a generic rule's text may name: {variant}, {task}, {mask} (as the summary shows it,
    with the architecture) and {label} (the metric's)."""
    mask = record.get("mask_label") or record["mask_kind"]
    return dict(variant=record["name"], task=record["task"], mask=mask, label=spec["label"])


def _state(results: dict, record: dict, spec: dict, rule: dict) -> list[str]:
    """rule["text"] with the fields of `_fields` and {value} (in the metric's format)."""
    value = fmt_value(record["metrics"][spec["name"]]["mean"], spec["format"])
    return [rule["text"].format(value=value, **_fields(record, spec))]


def _zero(results: dict, record: dict, spec: dict, rule: dict) -> list[str]:
    """rule["zero"] when the metric is exactly 0.0 in every seed, else rule["nonzero"] (with
    {largest}); the fields of `_fields`."""
    largest = max(abs(v) for v in record["metrics"][spec["name"]]["per_seed"])
    text = rule["zero"] if largest == 0.0 else rule["nonzero"]
    return [text.format(largest=f"{largest:.3g}", **_fields(record, spec))]


# This project's evaluators' rules -----------------------------------------------------------


def _leakage(results: dict, record: dict, spec: dict, rule: dict) -> list[str]:
    largest, name = max(record["metrics"][spec["name"]]["per_seed"]), record["name"]
    if largest == 0.0:
        return [
            f"{name}: perturbation leakage is exactly 0.0 (fp32) in every seed; no "
            "scored prediction reads a later token."
        ]
    design = {
        "diffusion": " (by design: a diffusion model reads the targets it denoises together)",
        "alignment": " (by design: a CTC model's canvas slots read each other)",
    }.get(record.get("model_kind"), " (by design: a CMLM model reads every target position)")
    return [
        f"{name}: changing the tokens after t moves the logits at positions ≤ t "
        f"by up to {largest:.3g}; it sees the future"
        + (design if record.get("non_ar") else "")
        + "."
    ]


def _reference(results: dict, record: dict, rule: dict) -> dict | None:
    """The variant on the same task with rule["reference"]'s mask kind and objective."""
    wanted = rule["reference"]
    for r in results.get("variants", []):
        if (r["task"], r["mask_kind"], r["objective"]) == (
            record["task"],
            wanted["mask_kind"],
            wanted["objective"],
        ) and rule["honest"] in r["metrics"]:
            return r
    return None


def _loss_gap(results: dict, record: dict, spec: dict, rule: dict) -> list[str]:
    """Honest vs teacher-forced loss, against the honest baseline of the same task."""
    m, name = record["metrics"], record["name"]
    tf, honest = m[rule["teacher_forced"]]["mean"], m[rule["honest"]]["mean"]
    gap = m[spec["name"]]
    ref = _reference(results, record, rule)
    base = ""
    if ref is not None and ref is not record:
        base = (
            f" (causal on {record['task']}: "
            f"{ref['metrics'][rule['teacher_forced']]['mean']:.3g}"
            f" / {ref['metrics'][rule['honest']]['mean']:.3g})"
        )
    if gap["mean"] > max(0.05, 3 * example_sem(gap)):
        return [
            f"{name}: teacher-forced loss {tf:.3g} but honest loss {honest:.3g}"
            f"{base}; it leaks, so its teacher-forced loss is not a LM loss."
        ]
    return [
        f"{name}: honest loss {honest:.3g} = teacher-forced loss {tf:.3g}"
        f"{base}; nothing leaks into the scored predictions."
    ]


def _random_floor(results: dict, record: dict, spec: dict, rule: dict) -> list[str]:
    m = record["metrics"]
    if rule["floor"] not in m:
        return []
    floor, rand = m[rule["floor"]]["mean"], m[spec["name"]]
    if rand["mean"] < floor - 3 * example_sem(rand):
        return [
            f"{record['name']}: loss {rand['mean']:.3g} on uniform random tokens is below "
            f"the floor ln({round(math.exp(floor))}) = {floor:.3g} that no "
            "honest model can beat: proof of leakage."
        ]
    return []


def _exact_match(results: dict, record: dict, decoder: str, rule: dict) -> list[str]:
    """Exact match; a parallel decoder is set against its baseline's AR decoder."""
    name, task, label = record["name"], record["task"], label_of(results, decoder)
    em = 100 * record["metrics"][f"exact_match/{decoder}"]["mean"]
    baseline = baseline_of(results, record)
    ar = baseline["metrics"].get(f"exact_match/{rule['against']}") if baseline else None
    if ar is not None and family_of(results, decoder) in rule["families"]:
        ar_em = 100 * ar["mean"]
        return [
            f"{name}: {label} {_relation(em, ar_em)} AR exact match on {task} "
            f"({em:.1f}% vs {ar_em:.1f}%)."
        ]
    # How a decoder decodes (greedy, beam, ...) is in its description, not guessed here.
    return [f"{name}: {label} exact match {em:.1f}% on {task}."]


def _multimodal(results: dict, record: dict, decoder: str, rule: dict) -> list[str]:
    share = {k: 100 * record["metrics"][f"{k}/{decoder}"]["mean"] for k in rule["outcomes"]}
    correct, mixed, wrong = (share[k] for k in rule["outcomes"])
    return [
        f"{record['name']}: {label_of(results, decoder)} on {record['task']}: {correct:.1f}% "
        f"correct, {mixed:.1f}% mixed (tokens of both modes), {wrong:.1f}% wrong otherwise."
    ]


def _translation(results: dict, record: dict, decoder: str, rule: dict) -> list[str]:
    """BLEU and chrF; a parallel decoder's BLEU against its baseline's AR decoder."""
    metrics = record["metrics"]
    bleu, chrf = metrics[f"bleu/{decoder}"]["mean"], metrics.get(f"chrf/{decoder}")
    text = f"{record['name']}: {label_of(results, decoder)} BLEU {bleu:.1f}"
    text += (f", chrF {chrf['mean']:.1f}" if chrf else "") + f" on {record['task']}"
    baseline = baseline_of(results, record)
    ar = baseline["metrics"].get(f"bleu/{rule['against']}") if baseline else None
    if ar is not None and family_of(results, decoder) in rule["families"]:
        text += f"; its BLEU {_relation(bleu, ar['mean'])} AR's ({ar['mean']:.1f})"
    return [text + "."]


def _exact_parallel(results: dict, record: dict, decoder: str, rule: dict) -> list[str]:
    """Whether an exact-parallel decoder gave greedy AR's tokens, and how much work it saved."""
    metrics = record["metrics"]
    same = 100 * metrics[f"equals_greedy/{decoder}"]["mean"]
    passes = metrics[f"target_passes_per_token/{decoder}"]["mean"]
    acceptance = metrics.get(f"acceptance/{decoder}")
    accepted = f", {100 * acceptance['mean']:.0f}% of drafts accepted" if acceptance else ""
    exact = "the same tokens as" if same == 100 else f"only {same:.1f}% of rows equal to"
    return [
        f"{record['name']}: {label_of(results, decoder)} gave {exact} greedy AR on "
        f"{record['task']}, with {passes:.2f} target passes per token{accepted}."
    ]


def _honest_vs_causal(results: dict, spec: dict, rule: dict) -> list[str]:
    """A leaky (full-mask) model decoded honestly against the causal model of the same task and
    architecture: the score of rule["honest"] against that of rule["causal"]."""
    records, metric = results.get("variants", []), spec["name"]
    honest_id, causal_id = rule["honest"], rule["causal"]
    honest_label, causal_label = label_of(results, honest_id), label_of(results, causal_id)
    out = []
    for leaky in records:
        honest = leaky["metrics"].get(f"{metric}/{honest_id}")
        causal = next(
            (
                r for r in records
                if (r["task"], r["mask_kind"], r["objective"], r.get("architecture"))
                == (leaky["task"], "causal", "teacher_forcing", leaky.get("architecture"))
                and f"{metric}/{causal_id}" in r["metrics"]
            ),
            None,
        )  # fmt: skip
        if honest is None or causal is None:
            continue
        ar = causal["metrics"][f"{metric}/{causal_id}"]["mean"]
        out.append(
            f"{leaky['name']}: decoded honestly ({honest_label}), {spec['label']} "
            f"{honest['mean']:.1f} on {leaky['task']} {_relation(honest['mean'], ar)} the causal "
            f"{causal['name']}'s {ar:.1f} ({causal_label}, same architecture)."
        )
    return out


def _distillation(results: dict, spec: dict, rule: dict) -> list[str]:
    """A variant trained on distilled data against its twin on the raw data (same task, mask and
    objective): the metric's share per decoder."""

    def data_of(record: dict) -> dict:
        return record.get("config", {}).get("data", {})

    records, metric, out = results.get("variants", []), spec["name"], []
    for student in records:
        if not data_of(student).get("distilled_dir"):
            continue
        same = ("task", "num_symbols")
        twins = [
            r for r in records
            if not data_of(r).get("distilled_dir")
            and all(data_of(r).get(k) == data_of(student).get(k) for k in same)
            and (r["mask_kind"], r["objective"]) == (student["mask_kind"], student["objective"])
        ]  # fmt: skip
        for twin in twins[:1]:
            for decoder in decoders_of(student):
                raw = twin["metrics"].get(f"{metric}/{decoder}")
                distilled = student["metrics"].get(f"{metric}/{decoder}")
                if raw and distilled:
                    out.append(
                        f"{label_of(results, decoder)} ({student['objective']}): "
                        f"{100 * raw['mean']:.1f}% {metric} outputs on raw data ({twin['name']}); "
                        f"{100 * distilled['mean']:.1f}% after distillation ({student['name']})."
                    )
    return out


RULES = {
    "state": ("variant", _state),
    "zero": ("variant", _zero),
    "leakage": ("variant", _leakage),
    "loss_gap": ("variant", _loss_gap),
    "random_floor": ("variant", _random_floor),
    "exact_match": ("decoder", _exact_match),
    "multimodal": ("decoder", _multimodal),
    "translation": ("decoder", _translation),
    "exact_parallel": ("decoder", _exact_parallel),
    "honest_vs_causal": ("experiment", _honest_vs_causal),
    "distillation": ("experiment", _distillation),
    "likelihood_order": ("experiment", likelihood_rules.likelihood_order),
    "gap_with_compute": ("experiment", likelihood_rules.gap_with_compute),
    "sample_quality": ("decoder", diffusion_rules.sample_quality),
    "parallel_steps": ("experiment", diffusion_rules.parallel_steps),
    "nar_gap": ("experiment", translation_rules.nar_gap),
    "iterations": ("experiment", translation_rules.iterations),
    "loss_and_sampler": ("experiment", translation_rules.loss_and_sampler),
    "fastest_student": ("experiment", translation_rules.fastest_student),
    "latency_speedup": ("experiment", translation_rules.latency_speedup),
    **SPEED_RULES,
}
# The scopes a rule may have, and what its function receives (report/verdicts.py).
SCOPES = ("variant", "decoder", "experiment", "table")


def register_rule(rule_id: str, scope: str, fn) -> None:
    """Adds a verdict rule: `{"rule": rule_id, ...}` in a MetricSpec's or TableSpec's `verdicts`
    then runs `fn` in `scope` (one of SCOPES). A second, different rule under a taken id is a
    ValueError; registering the same one again is harmless."""
    if scope not in SCOPES:
        raise ValueError(f"Rule {rule_id!r}: scope must be one of {SCOPES}, got {scope!r}")
    if RULES.get(rule_id, (scope, fn)) != (scope, fn):
        raise ValueError(f"Verdict rule {rule_id!r} is already registered")
    RULES[rule_id] = (scope, fn)
