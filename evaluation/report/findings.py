"""The findings: the report's opening table, one row per claim, with the variants it covers and
their numbers, so a reader sees "causal and prefix leak exactly 0.0 on both tasks; full leaks
23.6-25.4" in one row instead of assembling it from six verdicts.

A claim is a verdict with its variant, its task and its numbers taken out: the per-variant
verdicts that read the same once they are taken out make one row, listed in the order first met;
a decoder's label is a name, not a measurement ("mask-predict K=4, ... (beam 3)"), so the
numbers in it stay;
each number the claim holds is shown as the range over its variants. A verdict about the whole
experiment (a comparison across variants, the timed tables) is a row of its own; one whose rule
is marked `"lead": True` (a study's headline) opens the table. The verdicts
themselves follow the findings, each under its task.
"""

import re

from evaluation.report.rules import RULES
from evaluation.report.verdicts import verdict_groups, verdicts_of

# A number: digits with thousands separators inside (never a trailing comma), a fraction, an
# exponent.
NUMBER = re.compile(r"(?<![\w.])-?\d(?:[\d,]*\d)?(?:\.\d+)?(?:e[-+]?\d+)?(?![\w])")
SLOT = "\x00"  # Where a number stood in a claim.
LABEL = "\x01"  # Around the index of a decoder label held out of the numbers.


def _template(sentence: str, task: str, labels: list[str]) -> tuple[str, list[str]]:
    """(the sentence with its task written as {task}, each of `labels` (longest first) held as
    a placeholder and its numbers as slots; the numbers)."""
    for i, label in enumerate(labels):
        sentence = sentence.replace(label, _placeholder(i))
    numbers = NUMBER.findall(sentence)
    text = NUMBER.sub(SLOT, sentence)
    if task:
        text = text.replace(task, "{task}")
    return text, numbers


def _placeholder(i: int) -> str:
    """Label i's stand-in: letters only (A, B, ..., Z, BA, ...), so no number is read in it."""
    letters = ""
    while True:
        i, digit = divmod(i, 26)
        letters = chr(0x41 + digit) + letters
        if not i:
            return f"{LABEL}{letters}{LABEL}"


def _labels(results: dict) -> list[str]:
    """The decoders' labels that hold a digit, longest first (so none is cut by a shorter one)."""
    labels = {info.get("label", "") for info in results.get("decoders", {}).values()}
    return sorted((label for label in labels if re.search(r"\d", label)), key=len, reverse=True)


def _restore(text: str, labels: list[str]) -> str:
    for i, label in enumerate(labels):
        text = text.replace(_placeholder(i), label)
    return text


def _span(values: list[str]) -> str:
    """A slot's numbers: the one value, or the smallest to the largest."""
    unique = list(dict.fromkeys(values))
    if len(unique) == 1:
        return unique[0]
    try:
        ordered = sorted(unique, key=lambda v: float(v.replace(",", "")))
    except ValueError:
        return "/".join(unique)
    return f"{ordered[0]}–{ordered[-1]}"


def _fill(template: str, columns: list[list[str]], tasks: list[str]) -> str:
    parts = template.split(SLOT)
    text = parts[0] + "".join(_span(c) + part for c, part in zip(columns, parts[1:], strict=True))
    return text.replace("{task}", " and ".join(dict.fromkeys(tasks)))


def findings(results: dict) -> list[dict]:
    """[{claim (Markdown), variants (names), numbers ("<variant> <its values>" of the numbers
    that differ between the variants; none when they agree)}], in order."""
    rows: dict[tuple[str, int], dict] = {}
    labels = _labels(results)
    for record in results.get("variants", []):
        prefix = f"{record['name']}: "
        for sentence in verdicts_of(results, record):
            body = sentence.removeprefix(prefix)
            template, numbers = _template(body, record.get("task", ""), labels)
            row = rows.setdefault(
                (template, len(numbers)), {"template": template, "members": [], "tasks": []}
            )
            row["members"].append((record["name"], numbers))
            row["tasks"].append(record.get("task", ""))
    out = []
    for row in rows.values():
        names = [name for name, _ in row["members"]]
        columns = [list(c) for c in zip(*(n for _, n in row["members"]), strict=True)]
        varying = [i for i, column in enumerate(columns) if len(set(column)) > 1]
        numbers = [
            f"{name} {', '.join(values[i] for i in varying)}"
            for name, values in row["members"]
            if varying
        ]
        claim = _restore(_fill(row["template"], columns, row["tasks"]), labels)
        out.append({"claim": claim, "variants": names, "numbers": numbers})
    for group in verdict_groups(results):
        if group.get("scope") == "experiment":
            out += [{"claim": entry, "variants": [], "numbers": []} for entry in group["entries"]]
    # A study's headline (a rule marked "lead", e.g. the fair fight's best student) comes first.
    lead = set(_lead_lines(results))
    return [f for f in out if f["claim"] in lead] + [f for f in out if f["claim"] not in lead]


def _lead_lines(results: dict) -> list[str]:
    """The lines of the experiment-scope rules that a metric marks `"lead": True`."""
    return [
        line
        for spec in results.get("metrics_info", [])
        for rule in spec["verdicts"]
        if rule.get("lead") and RULES[rule["rule"]][0] == "experiment"
        for line in RULES[rule["rule"]][1](results, spec, rule)
    ]


def findings_table(results: dict) -> tuple[list[str], list[list[str]]]:
    """(headers, rows) of the findings table."""
    rows = [
        [f["claim"], ", ".join(f["variants"]) or "all", " · ".join(f["numbers"]) or "—"]
        for f in findings(results)
    ]
    return ["finding", "variants", "numbers"], rows
