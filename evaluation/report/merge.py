"""A later eval's results over an earlier one's: nothing measured before is lost silently.

An eval that runs other evaluators, other decoders or fewer variants than the last one keeps
what it did not recompute: each metric, sample set, picture, signature and sentence statistics
of a variant it did not measure again, each variant it did not evaluate, and the timed tables
when it timed nothing.
Whatever it recomputed replaces the old value. Each carried item is listed in the variant's
`carried` ({metric: "<created of the eval that measured it>, step <steps>"}) and in the notes
eval.py prints, with the step it was measured at when that differs from this eval's.
"""

import copy

# Per-variant fields that hold one entry per metric or decoder, carried entry by entry.
KEYED_FIELDS = ("metrics", "samples", "signatures", "sentences")


def _union(new: list[dict], old: list[dict], key: str) -> list[dict]:
    """`new`'s entries, then `old`'s whose `key` new lacks (metrics_info, tables_info)."""
    names = {entry[key] for entry in new}
    return new + [entry for entry in old if entry[key] not in names]


def _carry_into(record: dict, before: dict, created: str) -> list[str]:
    """Copies into `record` what `before` (the same variant, earlier) has and it lacks; the
    metric names carried."""
    carried = {}
    for field in KEYED_FIELDS:
        mine = record.setdefault(field, {})
        for key, value in (before.get(field) or {}).items():
            if key not in mine:
                mine[key] = copy.deepcopy(value)
                if field == "metrics":
                    carried[key] = f"{created}, step {before.get('steps')}"
    if not record.get("pictures") and before.get("pictures"):
        record["pictures"] = copy.deepcopy(before["pictures"])
    for key, origin in (before.get("carried") or {}).items():
        if key in carried:
            carried[key] = origin  # Carried twice: it keeps the eval that measured it.
    if carried:
        record["carried"] = {**record.get("carried", {}), **carried}
    return list(carried)


def merge(previous: dict | None, new: dict) -> tuple[dict, list[str]]:
    """(`new` with what `previous` measured and `new` did not, one note per carried thing)."""
    if not previous:
        return new, []
    merged, notes = copy.deepcopy(new), []
    created = previous.get("created", "an earlier eval")
    by_name = {record["name"]: record for record in merged["variants"]}
    for before in previous.get("variants", []):
        record = by_name.get(before["name"])
        if record is None:
            merged["variants"].append(copy.deepcopy(before))
            notes.append(f"{before['name']}: not evaluated this time; kept from {created}.")
            continue
        names = _carry_into(record, before, created)
        if names:
            steps = "" if before.get("steps") == record.get("steps") else (
                f" at step {before.get('steps')} (this eval: step {record.get('steps')})"
            )  # fmt: skip
            notes.append(f"{record['name']}: kept {', '.join(names)} from {created}{steps}.")
    if not merged.get("speed") and previous.get("speed"):
        merged["speed"] = copy.deepcopy(previous["speed"])
        notes.append(f"speed: not timed this time; the timed tables are kept from {created}.")
    merged["metrics_info"] = _union(
        merged.get("metrics_info", []), previous.get("metrics_info", []), "name"
    )
    merged["tables_info"] = _union(
        merged.get("tables_info", []), previous.get("tables_info", []), "name"
    )
    for key in ("decoders", "families"):
        merged[key] = {**previous.get(key, {}), **merged.get(key, {})}
    return merged, notes
