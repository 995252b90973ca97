"""Verdicts: one claim per sentence, each computed from the numbers of a results dict by the rules
that the metrics and tables describe (report/schema.py).

A rule is `{"rule": id, ...parameters}` in a MetricSpec's or TableSpec's `verdicts`; `RULES`
(report/rules.py) maps each id to (scope, function):
- "variant": `fn(results, record, spec, rule)`, once per variant whose metrics hold the metric;
- "decoder": `fn(results, record, decoder, rule)`, once per (variant, decoder) for the rule of
  highest `priority` among the per-decoder metrics that variant has for that decoder;
- "experiment": `fn(results, spec, rule)`, once per report (comparisons across variants);
- "table": `fn(results, rows, rule)` over a timed table's rows.
The generic rules ("state", "zero") serve any new metric without a change here.
"""

from evaluation.report.records import decoders_of
from evaluation.report.rules import RULES


def verdict_groups(results: dict) -> list[dict]:
    """{title, scope, entries} groups: one per task (its variants in order; scope "task"), then
    the comparisons across variants, then speed (scope "experiment")."""
    groups: dict[str, list[str]] = {}
    for record in results.get("variants", []):
        groups.setdefault(record["task"], []).extend(verdicts_of(results, record))
    out = [
        {"title": task, "scope": "task", "entries": entries}
        for task, entries in groups.items()
        if entries
    ]
    across = [
        line
        for spec in results.get("metrics_info", [])
        for rule in spec["verdicts"]
        if _scope(rule) == "experiment"
        for line in RULES[rule["rule"]][1](results, spec, rule)
    ]
    if across:
        out.append({"title": "Across variants", "scope": "experiment", "entries": across})
    speed = results.get("speed") or {}
    timed = [
        line
        for table in results.get("tables_info", [])
        for rule in table["verdicts"]
        for line in RULES[rule["rule"]][1](results, speed.get(table["name"], []), rule)
    ]
    if timed:
        out.append({"title": "Speed", "scope": "experiment", "entries": timed})
    return out


def verdicts(results: dict) -> list[str]:
    """Every verdict, in the order of its group."""
    return [entry for group in verdict_groups(results) for entry in group["entries"]]


def _scope(rule: dict) -> str:
    if rule["rule"] not in RULES:
        raise ValueError(f"Unknown verdict rule {rule['rule']!r}; known: {sorted(RULES)}")
    return RULES[rule["rule"]][0]


def verdicts_of(results: dict, record: dict) -> list[str]:
    """Each described metric's variant rules, then one verdict per scored decoder."""
    out = []
    specs = results.get("metrics_info", [])
    for spec in specs:
        for rule in spec["verdicts"]:
            if _scope(rule) == "variant" and spec["name"] in record["metrics"]:
                out += RULES[rule["rule"]][1](results, record, spec, rule)
    for decoder in decoders_of(record):
        present = [
            rule
            for spec in specs
            if spec["per_decoder"] and f"{spec['name']}/{decoder}" in record["metrics"]
            for rule in spec["verdicts"]
            if _scope(rule) == "decoder"
        ]
        if present:
            rule = max(present, key=lambda r: r.get("priority", 0))
            out += RULES[rule["rule"]][1](results, record, decoder, rule)
    return out
