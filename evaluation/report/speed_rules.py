"""The verdict rules of the timed tables (evaluation/speed.py's rows): scope "table", each a
function `fn(results, rows, rule)` of a table's rows and the rule's parameters.

`rules.RULES`, the one registry, takes them from `SPEED_RULES`.
"""


def timed_label(results: dict, decoder: str) -> str:
    """A timed decoder's label for people (its id when results do not list it)."""
    return results.get("decoders", {}).get(decoder, {}).get("label", decoder)


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


def _parallel_speed(results: dict, rows: list[dict], rule: dict) -> list[str]:
    """Per timed point, each decoder of rule["families"] against rule["against"]'s latency."""
    decoders, against = results.get("decoders", {}), rule["against"]

    def family(row: dict) -> str:
        return row.get("family") or decoders.get(row["decoder"], {}).get("family", "")

    def point(row: dict) -> tuple[int, int, int]:
        return row["batch_size"], row["prompt_len"], row["new_tokens"]

    parallel = [r for r in rows if family(r) in rule["families"]]
    order = list(decoders)
    names = sorted(
        {r["decoder"] for r in parallel},
        key=lambda n: (order.index(n) if n in order else len(order), n),
    )
    timings = {(r["decoder"], *point(r)): r["latency_s"] for r in rows}
    out = []
    for batch_size, prompt_len, new_tokens in sorted({point(r) for r in parallel}):
        ar_s = timings.get((against, batch_size, prompt_len, new_tokens))
        if ar_s is None:
            continue
        parts = []
        for name in names:
            other_s = timings.get((name, batch_size, prompt_len, new_tokens))
            if other_s is not None:
                ratio = max(ar_s, other_s) / min(ar_s, other_s)
                who = f"{ratio:.1f}x faster" if other_s < ar_s else f"AR {ratio:.1f}x faster"
                parts.append(f"{timed_label(results, name)} takes {1e3 * other_s:.1f} ms ({who})")
        out.append(
            f"At batch {batch_size}, {prompt_len} prompt + {new_tokens} new tokens, "
            f"{timed_label(results, against)} takes {1e3 * ar_s:.1f} ms; " + "; ".join(parts) + "."
        )
    return out


SPEED_RULES = {
    "cache_speedup": ("table", _cache_speedup),
    "training_speedup": ("table", _training_speedup),
    "parallel_speed": ("table", _parallel_speed),
}
