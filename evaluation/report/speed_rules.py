"""The verdict rules of the timed tables (evaluation/speed.py's rows): scope "table", each a
function `fn(results, rows, rule)` of a table's rows and the rule's parameters.

`rules.RULES`, the one registry, takes them from `SPEED_RULES`.
"""


def timed_label(results: dict, decoder: str, variant: str | None = None) -> str:
    """A timed decoder's label for people (its id when results do not list it), and the variant
    whose shape it was timed on where its rows name one (a diffusion decoder's block size)."""
    label = results.get("decoders", {}).get(decoder, {}).get("label", decoder)
    return f"{label} on {variant}" if variant else label


def _cache_speedup(results: dict, rows: list[dict], rule: dict) -> list[str]:
    """rule["cache"] vs rule["no_cache"] at batch 1, by total length (same prompt length)."""
    cache, no_cache = rule["cache"], rule["no_cache"]
    batch1 = {(s["decoder"], s["prompt_len"], s["length"]): s for s in rows if s["batch_size"] == 1}
    both = sorted(
        (length, prompt_len)
        for decoder, prompt_len, length in batch1
        if decoder == no_cache and (cache, prompt_len, length) in batch1
    )
    if not both:
        return []
    ratios = [
        batch1[no_cache, p, n]["latency_s"] / batch1[cache, p, n]["latency_s"] for n, p in both
    ]
    trend = "grows with length" if ratios[-1] > ratios[0] else "does not grow with length here"
    speedups = ", ".join(
        f"{ratio:.1f}× faster at {n} tokens" for (n, _), ratio in zip(both, ratios, strict=True)
    )
    return [f"KV cache vs no cache (batch 1): {speedups}; the speed-up {trend}."]


def _training_speedup(results: dict, rows: list[dict], rule: dict) -> list[str]:
    training = {t["objective"]: t for t in rows}
    if not {rule["fast"], rule["slow"]} <= set(training):
        return []
    tf, seq = training[rule["fast"]], training[rule["slow"]]
    return [
        f"Training at length {tf['seq_len']}: teacher forcing "
        f"{tf['tokens_per_s']:,.0f} tokens/s vs sequential {seq['tokens_per_s']:,.0f}"
        f" ({tf['tokens_per_s'] / seq['tokens_per_s']:.1f}×): one parallel pass "
        "instead of one pass per position."
    ]


Point = tuple[int, int, int]  # (batch size, prompt length, new tokens)
Entry = tuple[str, str | None]  # (decoder, the variant whose shape it was timed on, or None)


def _point(row: dict) -> Point:
    return row["batch_size"], row["prompt_len"], row["new_tokens"]


def _parallel_entries(results: dict, rows: list[dict], families: list[str]) -> list[Entry]:
    """The (decoder, variant) of each row of `families`, in results' decoder order."""
    decoders = results.get("decoders", {})

    def family(row: dict) -> str:
        return row.get("family") or decoders.get(row["decoder"], {}).get("family", "")

    found = dict.fromkeys((r["decoder"], r.get("variant")) for r in rows if family(r) in families)
    order = list(decoders)
    return sorted(found, key=lambda e: (order.index(e[0]) if e[0] in order else len(order), e[0]))


def _parallel_speed(results: dict, rows: list[dict], rule: dict) -> list[str]:
    """Per timed point, each decoder of rule["families"] against rule["against"]'s latency."""
    against = rule["against"]
    entries = _parallel_entries(results, rows, rule["families"])
    timings = {(r["decoder"], r.get("variant"), *_point(r)): r["latency_s"] for r in rows}
    ar = {_point(r): r["latency_s"] for r in rows if r["decoder"] == against}
    points = {_point(r) for r in rows if (r["decoder"], r.get("variant")) in entries}
    out = []
    for point in sorted(points & set(ar)):
        ar_s, parts = ar[point], []
        for decoder, variant in entries:
            other_s = timings.get((decoder, variant, *point))
            if other_s is not None:
                ratio = max(ar_s, other_s) / min(ar_s, other_s)
                who = f"{ratio:.1f}x faster" if other_s < ar_s else f"AR {ratio:.1f}x faster"
                label = timed_label(results, decoder, variant)
                parts.append(f"{label} takes {1e3 * other_s:.1f} ms ({who})")
        batch_size, prompt_len, new_tokens = point
        out.append(
            f"At batch {batch_size}, {prompt_len} prompt + {new_tokens} new tokens, "
            f"{timed_label(results, against)} takes {1e3 * ar_s:.1f} ms; " + "; ".join(parts) + "."
        )
    return out


def speedups_by_batch(results: dict, rows: list[dict], rule: dict) -> dict[Entry, dict]:
    """(decoder, variant) -> {"tokens": (prompt length, new tokens), "speedups": [(batch size,
    rule["against"]'s latency / its latency)], by batch} for each decoder of rule["families"]
    timed beside rule["against"] at two or more batch sizes of the same lengths (those with the
    most batch sizes, the longest on a tie)."""
    ar = {_point(r): r["latency_s"] for r in rows if r["decoder"] == rule["against"]}
    entries = _parallel_entries(results, rows, rule["families"])
    by_tokens = {entry: {} for entry in entries}
    for r in rows:
        entry, point = (r["decoder"], r.get("variant")), _point(r)
        if entry in by_tokens and point in ar:
            speedup = ar[point] / r["latency_s"]
            by_tokens[entry].setdefault(point[1:], {})[point[0]] = speedup
    out = {}
    for entry, found in by_tokens.items():
        if found:
            tokens, speedups = max(found.items(), key=lambda item: (len(item[1]), sum(item[0])))
            if len(speedups) >= 2:
                out[entry] = {"tokens": tokens, "speedups": sorted(speedups.items())}
    return out


def _batch_speedup(results: dict, rows: list[dict], rule: dict) -> list[str]:
    """Per decoder of rule["families"]: its speed-up over rule["against"] at each batch size
    timed, and the smallest batch where it falls below 1 (Helcl et al. 2022: it shrinks as
    the batch grows)."""
    against, out = timed_label(results, rule["against"]), []
    for (decoder, variant), found in speedups_by_batch(results, rows, rule).items():
        speedups = found["speedups"]
        below = [batch for batch, speedup in speedups if speedup < 1]
        if not below:
            end = f"its speed-up stays above 1 up to batch {speedups[-1][0]}"
        elif below[0] == speedups[0][0]:
            end = f"it is slower than {against} at every batch size timed"
        else:
            end = f"its speed-up falls below 1 at batch {below[0]}"
        listing = ", ".join(f"{speedup:.2f}× at batch {batch}" for batch, speedup in speedups)
        prompt_len, new_tokens = found["tokens"]
        out.append(
            f"{timed_label(results, decoder, variant)} against {against} by batch size "
            f"({prompt_len} prompt + {new_tokens} new tokens): {listing}; {end}."
        )
    return out


SPEED_RULES = {
    "cache_speedup": ("table", _cache_speedup),
    "training_speedup": ("table", _training_speedup),
    "parallel_speed": ("table", _parallel_speed),
    "batch_speedup": ("table", _batch_speedup),
}
