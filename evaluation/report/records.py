"""What the verdict rules, tables and figures read of a results dict's variant records."""


def decoders_of(record: dict) -> list[str]:
    """The decoders scored on a variant, in the order of its metrics."""
    return [k.split("/", 1)[1] for k in record["metrics"] if k.startswith("exact_match/")]


def label_of(results: dict, decoder: str) -> str:
    """A decoder's label for people (its id when results do not list it)."""
    return results.get("decoders", {}).get(decoder, {}).get("label", decoder)


def family_of(results: dict, decoder: str) -> str:
    """ "AR", "non-AR" or "exact-parallel" from results["decoders"]; "—" when it is not listed."""
    return results.get("decoders", {}).get(decoder, {}).get("family", "—")


def example_sem(metric: dict) -> float:
    """The sem over seeds, else the first seed's sem over examples, else 0."""
    return metric["sem"] or ((metric.get("per_seed_sem") or [None])[0] or 0.0)


def baseline_of(results: dict, record: dict) -> dict | None:
    """The record of the AR variant a non-AR variant is compared with (`eval.nar.ar_variant`)."""
    by_name = {r["name"]: r for r in results.get("variants", [])}
    return by_name.get(record.get("baseline") or "")


def distilled(record: dict) -> bool:
    """Whether the variant trained on a teacher's outputs (data.distilled_dir)."""
    return bool(record.get("config", {}).get("data", {}).get("distilled_dir"))
