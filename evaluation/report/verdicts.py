"""Verdicts: one claim per sentence, each computed from the numbers of a results dict."""

from evaluation.report.tables import NON_AR_OBJECTIVES, decoders_of, family_of

AR_CACHE = "AR (cache)"  # The AR decoder that non-AR decoders and the no-cache sampler face.
AR_NO_CACHE = "AR (no cache, honest)"
PARALLEL_FAMILIES = ("non-AR", "exact-parallel")


def verdicts(results: dict) -> list[str]:
    """Sentences computed from the numbers: per variant, then speed."""
    records = results.get("variants", [])
    out = []
    for record in records:
        out += _leakage_verdicts(record)
        out += _loss_verdicts(records, record)
        out += _generation_verdicts(results, record)
    out += _distillation_verdicts(records)
    out += _honest_translation_verdicts(records)
    speed = results.get("speed") or {}
    out += _cache_verdicts(speed.get("sampling", []))
    out += _training_verdicts(speed.get("training", []))
    out += _parallel_speed_verdicts(speed.get("sampling", []), results.get("decoders", {}))
    return out


def _example_sem(metric: dict) -> float:
    """The sem over seeds, else the first seed's sem over examples, else 0."""
    return metric["sem"] or ((metric.get("per_seed_sem") or [None])[0] or 0.0)


def _reference(records: list[dict], record: dict) -> dict | None:
    """The causal, teacher-forced variant on the same task: the honest baseline."""
    for r in records:
        if (r["task"], r["mask_kind"], r["objective"]) == (
            record["task"],
            "causal",
            "teacher_forcing",
        ) and "loss_honest" in r["metrics"]:
            return r
    return None


def _leakage_verdicts(record: dict) -> list[str]:
    metric, name = record["metrics"].get("perturbation_leakage"), record["name"]
    if metric is None:
        return []
    largest = max(metric["per_seed"])
    if largest == 0.0:
        return [
            f"{name}: perturbation leakage is exactly 0.0 (fp32) in every seed; no "
            "scored prediction reads a later token."
        ]
    design = " (by design: a CMLM model reads every target position)"
    return [
        f"{name}: changing the tokens after t moves the logits at positions ≤ t "
        f"by up to {largest:.3g}; it sees the future"
        + (design if record.get("objective") in NON_AR_OBJECTIVES else "")
        + "."
    ]


def _loss_verdicts(records: list[dict], record: dict) -> list[str]:
    """Honest vs teacher-forced loss, and the random-token floor (next-token variants only)."""
    m, name, out = record["metrics"], record["name"], []
    if {"loss_teacher_forced", "loss_honest", "leak_gap"} <= set(m):
        tf, honest, gap = (m[k]["mean"] for k in ("loss_teacher_forced", "loss_honest", "leak_gap"))
        ref = _reference(records, record)
        base = ""
        if ref is not None and ref is not record:
            base = (
                f" (causal on {record['task']}: "
                f"{ref['metrics']['loss_teacher_forced']['mean']:.3g}"
                f" / {ref['metrics']['loss_honest']['mean']:.3g})"
            )
        if gap > max(0.05, 3 * _example_sem(m["leak_gap"])):
            out.append(
                f"{name}: teacher-forced loss {tf:.3g} but honest loss {honest:.3g}"
                f"{base}; it leaks, so its teacher-forced loss is not a LM loss."
            )
        else:
            out.append(
                f"{name}: honest loss {honest:.3g} = teacher-forced loss {tf:.3g}"
                f"{base}; nothing leaks into the scored predictions."
            )
    if {"random_floor", "random_loss"} <= set(m):
        floor, rand = m["random_floor"]["mean"], m["random_loss"]
        if rand["mean"] < floor - 3 * _example_sem(rand):
            out.append(
                f"{name}: loss {rand['mean']:.3g} on uniform random tokens is below "
                f"the floor ln({round(2.718281828**floor)}) = {floor:.3g} that no "
                "honest model can beat: proof of leakage."
            )
    return out


def _relation(em: float, ar: float) -> str:
    """How an exact match (in %) compares with the AR one."""
    gap = em - ar
    if abs(gap) < 0.05:
        return "matches"
    if abs(gap) <= 1:
        return f"is within {abs(gap):.1f} points of"
    return f"is {abs(gap):.1f} points {'above' if gap > 0 else 'below'}"


MULTIMODAL = ("correct", "mixed", "wrong")


def _generation_verdicts(results: dict, record: dict) -> list[str]:
    """Exact match per decoder; a parallel decoder is set against its baseline's AR (cache)."""
    out = []
    if "length_accuracy" in record["metrics"]:
        share = 100 * record["metrics"]["length_accuracy"]["mean"]
        out.append(
            f"{record['name']}: the length head predicts the reference target length of "
            f"{share:.1f}% of held-out prompts."
        )
    return out + _decoder_verdicts(results, record)


def _decoder_verdicts(results: dict, record: dict) -> list[str]:
    by_name = {r["name"]: r for r in results.get("variants", [])}
    baseline = by_name.get(record.get("baseline") or "")
    ar = baseline["metrics"].get(f"exact_match/{AR_CACHE}") if baseline else None
    out, name, task = [], record["name"], record["task"]
    for decoder in decoders_of(record):
        em = 100 * record["metrics"][f"exact_match/{decoder}"]["mean"]
        if f"equals_greedy/{decoder}" in record["metrics"]:
            out.append(_exact_parallel_verdict(record, decoder, task))
        elif f"bleu/{decoder}" in record["metrics"]:  # Translation: exact match misleads.
            out.append(_translation_verdict(results, record, decoder, baseline))
        elif f"mixed/{decoder}" in record["metrics"]:  # A multi-modal task: exact match misleads.
            share = {k: 100 * record["metrics"][f"{k}/{decoder}"]["mean"] for k in MULTIMODAL}
            out.append(
                f"{name}: {decoder} on {task}: {share['correct']:.1f}% correct, "
                f"{share['mixed']:.1f}% mixed (tokens of both modes), {share['wrong']:.1f}% "
                "wrong otherwise."
            )
        elif ar is not None and family_of(results, decoder) in PARALLEL_FAMILIES:
            ar_em = 100 * ar["mean"]
            out.append(
                f"{name}: {decoder} {_relation(em, ar_em)} AR exact match on {task} "
                f"({em:.1f}% vs {ar_em:.1f}%)."
            )
        else:
            # How a decoder decodes (greedy, beam, ...) is in its description, not guessed here.
            out.append(f"{name}: {decoder} exact match {em:.1f}% on {task}.")
    return out


def _translation_verdict(results: dict, record: dict, decoder: str, baseline: dict | None) -> str:
    """A decoder's BLEU and chrF; a parallel decoder's BLEU against its baseline's AR (cache)."""
    metrics = record["metrics"]
    bleu, chrf = metrics[f"bleu/{decoder}"]["mean"], metrics.get(f"chrf/{decoder}")
    text = f"{record['name']}: {decoder} BLEU {bleu:.1f}"
    text += (f", chrF {chrf['mean']:.1f}" if chrf else "") + f" on {record['task']}"
    ar = baseline["metrics"].get(f"bleu/{AR_CACHE}") if baseline else None
    if ar is not None and family_of(results, decoder) in PARALLEL_FAMILIES:
        text += f"; its BLEU {_relation(bleu, ar['mean'])} AR's ({ar['mean']:.1f})"
    return text + "."


def _architecture(record: dict) -> str:
    return record.get("config", {}).get("model", {}).get("architecture", "decoder")


def _honest_translation_verdicts(records: list[dict]) -> list[str]:
    """A leaky (full-mask) model decoded honestly against the causal model of the same task and
    architecture: BLEU of AR (no cache, honest) against that of AR (cache)."""
    out = []
    for leaky in records:
        honest = leaky["metrics"].get(f"bleu/{AR_NO_CACHE}")
        causal = next(
            (
                r for r in records
                if (r["task"], r["mask_kind"], r["objective"], _architecture(r))
                == (leaky["task"], "causal", "teacher_forcing", _architecture(leaky))
                and f"bleu/{AR_CACHE}" in r["metrics"]
            ),
            None,
        )  # fmt: skip
        if honest is None or causal is None:
            continue
        ar = causal["metrics"][f"bleu/{AR_CACHE}"]["mean"]
        out.append(
            f"{leaky['name']}: decoded honestly ({AR_NO_CACHE}), BLEU {honest['mean']:.1f} on "
            f"{leaky['task']} {_relation(honest['mean'], ar)} the causal {causal['name']}'s "
            f"{ar:.1f} ({AR_CACHE}, same architecture)."
        )
    return out


def _distillation_verdicts(records: list[dict]) -> list[str]:
    """A variant trained on distilled data against its twin on the raw data (same task, mask and
    objective): the mixed share per decoder on a multi-modal task."""

    def data_of(record: dict) -> dict:
        return record.get("config", {}).get("data", {})

    out = []
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
                raw = twin["metrics"].get(f"mixed/{decoder}")
                distilled = student["metrics"].get(f"mixed/{decoder}")
                if raw and distilled:
                    out.append(
                        f"{decoder} ({student['objective']}): {100 * raw['mean']:.1f}% mixed "
                        f"outputs on raw data ({twin['name']}); {100 * distilled['mean']:.1f}% "
                        f"after distillation ({student['name']})."
                    )
    return out


def _exact_parallel_verdict(record: dict, decoder: str, task: str) -> str:
    """Whether an exact-parallel decoder gave greedy AR's tokens, and how much work it saved."""
    metrics = record["metrics"]
    same = 100 * metrics[f"equals_greedy/{decoder}"]["mean"]
    passes = metrics[f"target_passes_per_token/{decoder}"]["mean"]
    acceptance = metrics.get(f"acceptance/{decoder}")
    accepted = f", {100 * acceptance['mean']:.0f}% of drafts accepted" if acceptance else ""
    exact = "the same tokens as" if same == 100 else f"only {same:.1f}% of rows equal to"
    return (
        f"{record['name']}: {decoder} gave {exact} greedy AR on {task}, with "
        f"{passes:.2f} target passes per token{accepted}."
    )


def _cache_verdicts(rows: list[dict]) -> list[str]:
    """KV cache vs no cache at batch 1, by total length (same prompt length)."""
    batch1 = {(s["decoder"], s["prompt_len"], s["length"]): s for s in rows if s["batch_size"] == 1}
    both = sorted(
        (length, prompt_len)
        for decoder, prompt_len, length in batch1
        if decoder == AR_NO_CACHE and (AR_CACHE, prompt_len, length) in batch1
    )
    if not both:
        return []
    ratios = [
        batch1[AR_NO_CACHE, p, n]["latency_s"] / batch1[AR_CACHE, p, n]["latency_s"]
        for n, p in both
    ]
    trend = "grows with length" if ratios[-1] > ratios[0] else "does not grow with length here"
    speedups = ", ".join(
        f"{ratio:.1f}× faster at {n} tokens" for (n, _), ratio in zip(both, ratios, strict=True)
    )
    return [f"KV cache vs no cache (batch 1): {speedups}; the speed-up {trend}."]


def _training_verdicts(rows: list[dict]) -> list[str]:
    training = {t["objective"]: t for t in rows}
    if not {"teacher_forcing", "sequential"} <= set(training):
        return []
    tf, seq = training["teacher_forcing"], training["sequential"]
    return [
        f"Training at length {tf['seq_len']}: teacher forcing "
        f"{tf['tokens_per_s']:,.0f} tokens/s vs sequential {seq['tokens_per_s']:,.0f}"
        f" ({tf['tokens_per_s'] / seq['tokens_per_s']:.1f}×): one parallel pass "
        "instead of one pass per position."
    ]


def _parallel_speed_verdicts(rows: list[dict], decoders: dict) -> list[str]:
    """Per timed point, each non-AR / exact-parallel decoder's latency against AR (cache)."""

    def family(row: dict) -> str:
        return row.get("family") or decoders.get(row["decoder"], {}).get("family", "")

    def point(row: dict) -> tuple[int, int, int]:
        return row["batch_size"], row["prompt_len"], row["new_tokens"]

    parallel = [r for r in rows if family(r) in PARALLEL_FAMILIES]
    order = list(decoders)
    names = sorted(
        {r["decoder"] for r in parallel},
        key=lambda n: (order.index(n) if n in order else len(order), n),
    )
    timings = {(r["decoder"], *point(r)): r["latency_s"] for r in rows}
    out = []
    for batch_size, prompt_len, new_tokens in sorted({point(r) for r in parallel}):
        ar_s = timings.get((AR_CACHE, batch_size, prompt_len, new_tokens))
        if ar_s is None:
            continue
        parts = []
        for name in names:
            other_s = timings.get((name, batch_size, prompt_len, new_tokens))
            if other_s is not None:
                ratio = max(ar_s, other_s) / min(ar_s, other_s)
                who = f"{ratio:.1f}x faster" if other_s < ar_s else f"AR {ratio:.1f}x faster"
                parts.append(f"{name} takes {1e3 * other_s:.1f} ms ({who})")
        out.append(
            f"At batch {batch_size}, {prompt_len} prompt + {new_tokens} new tokens, "
            f"{AR_CACHE} takes {1e3 * ar_s:.1f} ms; " + "; ".join(parts) + "."
        )
    return out
