"""The findings: the report's opening table, one row per claim, with the variants it covers and
their numbers, so a reader sees "causal and prefix leak exactly 0.0 on both tasks; full leaks
23.6-25.4" in one row instead of assembling it from six verdicts.

A claim is a verdict with its variant, its task and its numbers taken out: the per-variant
verdicts that read the same once they are taken out make one row, listed in the order first met;
each number the claim holds is shown as the range over its variants. A verdict about the whole
experiment (a comparison across variants, the timed tables) is a row of its own. The verdicts
themselves follow the findings, each under its task.
"""

import re

from evaluation.report.verdicts import verdict_groups, verdicts_of

NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?(?![\w])")
SLOT = "\x00"  # Where a number stood in a claim.


def _template(sentence: str, task: str) -> tuple[str, list[str]]:
    """(the sentence with its task written as {task} and its numbers as slots, the numbers)."""
    numbers = NUMBER.findall(sentence)
    text = NUMBER.sub(SLOT, sentence)
    if task:
        text = text.replace(task, "{task}")
    return text, numbers


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
    for record in results.get("variants", []):
        prefix = f"{record['name']}: "
        for sentence in verdicts_of(results, record):
            body = sentence.removeprefix(prefix)
            template, numbers = _template(body, record.get("task", ""))
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
        claim = _fill(row["template"], columns, row["tasks"])
        out.append({"claim": claim, "variants": names, "numbers": numbers})
    for group in verdict_groups(results):
        if group.get("scope") == "experiment":
            out += [{"claim": entry, "variants": [], "numbers": []} for entry in group["entries"]]
    return out


def findings_table(results: dict) -> tuple[list[str], list[list[str]]]:
    """(headers, rows) of the findings table."""
    rows = [
        [f["claim"], ", ".join(f["variants"]) or "all", " · ".join(f["numbers"]) or "—"]
        for f in findings(results)
    ]
    return ["finding", "variants", "numbers"], rows
