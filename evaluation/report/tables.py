"""The report's tables, as (headers, rows of cells), and the number format they share."""

Table = tuple[list[str], list[list[str]]]  # (headers, rows of cells)

SUMMARY_TITLE = "Summary (mean ± sem over seeds; † = one seed, sem over examples)"


def fmt(metric: dict | None, digits: int = 3, percent: bool = False, points: bool = False) -> str:
    """'mean ± sem' over seeds; with one seed, ± the sem over examples, marked †. Percentages
    and `points` (a 0-100 score: BLEU, chrF) get one decimal, other numbers `digits` digits."""
    if metric is None:
        return "—"
    scale = 100.0 if percent else 1.0
    unit = "%" if percent else ""

    def number(x: float) -> str:
        if x == 0.0:
            return "0.0"
        return f"{scale * x:.1f}" if percent or points else f"{x:.{digits}g}"

    text = number(metric["mean"]) + unit
    if metric["sem"] is not None:
        return f"{text} ± {number(metric['sem'])}{unit}"
    example_sem = (metric.get("per_seed_sem") or [None])[0]
    if example_sem:
        return f"{text} ± {number(example_sem)}{unit}†"
    return text


# The objectives of non-AR (CMLM-family) variants: training/config.py's MASKED_OBJECTIVES, named
# here because the renderer imports nothing from training (tests/test_report.py checks both).
NON_AR_OBJECTIVES = ("masked", "glancing")


def decoders_of(record: dict) -> list[str]:
    """The decoders scored on a variant, in the order of its metrics."""
    return [k.split("/", 1)[1] for k in record["metrics"] if k.startswith("exact_match/")]


def family_of(results: dict, decoder: str) -> str:
    """ "AR", "non-AR" or "exact-parallel" from results["decoders"]; "—" when it is not listed."""
    return results.get("decoders", {}).get(decoder, {}).get("family", "—")


def _mask(record: dict) -> str:
    """The mask kind, and "enc-dec" for an encoder-decoder (whose mask is its decoder's)."""
    model = record.get("config", {}).get("model", {})
    enc_dec = model.get("architecture") == "encoder_decoder"
    return f"enc-dec, {record['mask_kind']}" if enc_dec else record["mask_kind"]


def _steps(record: dict) -> str:
    """'1200/1200': the step evaluated (each distinct one, over seeds) of the configured steps."""
    steps = ",".join(str(s) for s in dict.fromkeys(record.get("steps", [])))
    return f"{steps or '—'}/{record.get('num_steps', '—')}"


def summary_table(records: list[dict]) -> Table:
    headers = [
        "variant",
        "task",
        "mask",
        "objective",
        "seeds",
        "params",
        "step",
        "max |Δ logits| (past)",
        "future share",
        "loss, teacher-forced",
        "loss, honest",
        "random-token loss (floor)",
        "train tokens/s (logged)",
    ]
    rows = []
    for r in records:
        m = r["metrics"]
        floor = m.get("random_floor")
        rows.append(
            [
                r["name"],
                r["task"],
                _mask(r),
                r["objective"],
                str(len(r["seeds"])),
                f"{r['num_params']:,}" if r.get("num_params") is not None else "—",
                _steps(r),
                fmt(m.get("perturbation_leakage")),
                fmt(m.get("dependency_future_share"), percent=True),
                fmt(m.get("loss_teacher_forced")),
                fmt(m.get("loss_honest")),
                f"{fmt(m.get('random_loss'))} ({floor['mean']:.3g})" if floor else "—",
                f"{r['train_tokens_per_s']:,.0f}" if r.get("train_tokens_per_s") else "—",
            ]
        )
    return headers, rows


# Per-decoder corpus scores of a translation task, on sacrebleu's 0-100 scale, and their headers.
SCORES = {"bleu": "BLEU", "chrf": "chrF"}


def outcome_names(results: dict) -> list[str]:
    """Per-decoder metrics beyond exact match and token accuracy (BLEU and chrF first; a
    multi-modal task's "correct", "mixed", "wrong"), in the order they first appear."""
    names = []
    for r in results["variants"]:
        for key in r["metrics"]:
            name = key.split("/", 1)[0]
            if "/" in key and name not in ("exact_match", "token_accuracy", *names):
                names.append(name)
    return sorted(names, key=lambda name: name not in SCORES)


# Per-decoder metrics that are not shares of rows or tokens: shown as numbers, not percentages.
RATES = ("target_passes_per_token", *SCORES)


def quality_table(results: dict) -> Table:
    """One row per (variant, decoder): AR and non-AR decoders side by side."""
    extra = outcome_names(results)
    rows = [
        [
            r["name"],
            decoder,
            family_of(results, decoder),
            fmt(r["metrics"][f"exact_match/{decoder}"], percent=True),
            fmt(r["metrics"].get(f"token_accuracy/{decoder}"), percent=True),
            *(
                fmt(
                    r["metrics"].get(f"{name}/{decoder}"),
                    percent=name not in RATES,
                    points=name in SCORES,
                )
                for name in extra
            ),
        ]
        for r in results["variants"]
        for decoder in decoders_of(r)
    ]
    names = [SCORES.get(name, name.replace("_", " ")) for name in extra]
    return ["variant", "decoder", "family", "exact match", "token accuracy", *names], rows


def signature_note(records: list[dict]) -> str | None:
    """What the BLEU and chrF columns are, with each distinct sacrebleu signature once
    (Markdown); None when no variant has any."""
    found = {}
    for r in records:
        for metric, signature in (r.get("signatures") or {}).items():
            found.setdefault(metric, {})[signature] = None
    if not found:
        return None
    named = "; ".join(
        f"{SCORES.get(metric, metric)} `{signature}`"
        for metric, signatures in found.items()
        for signature in signatures
    )
    return (
        "BLEU and chrF: sacrebleu's corpus scores (0-100) of the detokenised outputs against "
        "the references; ± over examples is the sem from resampling the sentences (a bootstrap "
        f"of `bs` resamples). Signatures: {named}."
    )


def sampling_table(rows: list[dict]) -> Table:
    """Decoding speed of every decoder, whatever its family."""
    headers = [
        "decoder",
        "family",
        "batch",
        "prompt",
        "new tokens",
        "latency (ms)",
        "ms / token",
        "tokens / s",
        "compile (s)",
    ]
    cells = [
        [
            s["decoder"],
            s.get("family", "—"),
            str(s["batch_size"]),
            str(s["prompt_len"]),
            str(s["new_tokens"]),
            f"{1e3 * s['latency_s']:.2f}",
            f"{s['ms_per_token']:.3f}",
            f"{s['tokens_per_s']:,.0f}",
            f"{s['compile_s']:.2f}",
        ]
        for s in rows
    ]
    return headers, cells


def training_table(rows: list[dict]) -> Table:
    headers = ["objective", "dtype", "length", "batch", "step (s)", "tokens / s", "compile (s)"]
    cells = [
        [
            t["objective"],
            t.get("dtype", "float32"),
            str(t["seq_len"]),
            str(t["batch_size"]),
            f"{t['step_time_s']:.4f}",
            f"{t['tokens_per_s']:,.0f}",
            f"{t['compile_s']:.2f}",
        ]
        for t in rows
    ]
    return headers, cells


def speed_note(speed: dict) -> str:
    """Which variant's shape was timed, that shape, and how (Markdown)."""
    model = speed.get("model", {})
    formats = {
        "num_layers": "{} layers",
        "d_model": "d_model {}",
        "num_heads": "{} heads",
        "d_ff": "d_ff {}",
        "vocab_size": "vocabulary {}",
    }
    shape = [text.format(model[key]) for key, text in formats.items() if key in model]
    text = f"Timed on the shape of **{speed.get('variant', '?')}**"
    text += f" ({', '.join(shape)})." if shape else "."
    return f"{text} {speed['note']}" if speed.get("note") else text
