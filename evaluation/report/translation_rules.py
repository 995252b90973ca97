"""The verdicts of the field's table (experiments/translate.py): the non-AR family against its AR
baseline on translation, in BLEU and in measured latency (evaluation/latency.py).

`rules.RULES` registers them, each of scope "experiment":
- "nar_gap": per non-AR variant, the BLEU of its family's headline decoder (rule["by_objective"]
  by objective id, else rule["decoder"]) against its AR baseline's rule["against"], and for a
  variant trained on distilled data, the gap its raw twin (same mask and objective, raw data)
  leaves: what distillation closes (Zhou et al. 2020);
- "iterations": per non-AR variant, BLEU by passes (mask-predict's K, diffusion's T) and length
  beam (the decoders' params in results["decoders"]: those of the predicted-length rows);
- "loss_and_sampler": a diffusion variant (MDLM) against the masked one (CMLM) of the same
  model and data, sampler by sampler at mask-predict's passes: what the loss's weighting and the
  sampler are worth;
- "fastest_student": the best row with at most rule["max_passes"] passes (CTC, K, T) and its gap
  to AR: the fair fight's headline;
  each difference these state comes with its sem (`bleu_difference`: a paired bootstrap
  over the same sentences, seed by seed, where results.json holds each sentence's statistics;
  else the two bootstrap sems combined as independent, an upper bound) and "within noise"
  where it is at most 2 sem;
- "latency_speedup": per parallel decoder, its measured latency against its AR baseline's
  rule["against"] at batch 1 and at the large batch: where its speed-up disappears (Helcl et al.
  2022).
"""

import math

from evaluation.report.paired import over_seeds, paired_bootstrap
from evaluation.report.records import (
    baseline_of,
    difference,
    distilled,
    example_sem,
    family_of,
    label_of,
    params_of,
    per_decoder,
    with_noise,
)


def _bleu(record: dict, decoder: str) -> dict | None:
    """The `bleu/<decoder>` metric of a variant (mean, sems), or None where it was not scored."""
    return record["metrics"].get(f"bleu/{decoder}")


def bleu_difference(a: dict, a_decoder: str, b: dict, b_decoder: str) -> tuple[float, float]:
    """(BLEU of a's decoder − BLEU of b's, its sem): a paired bootstrap over the same sentences
    (evaluation/report/paired.py) seed by seed where both records hold each sentence's
    statistics for as many seeds, the seeds' differences averaged and their sems combined with
    the spread over seeds; else `records.difference` (independent sems, an upper bound)."""
    key_a, key_b = f"bleu/{a_decoder}", f"bleu/{b_decoder}"
    seeds_a = (a.get("sentences") or {}).get(key_a) or []
    seeds_b = (b.get("sentences") or {}).get(key_b) or []
    paired = over_seeds(seeds_a, seeds_b, paired_bootstrap)
    return paired or difference(_bleu(a, a_decoder), _bleu(b, b_decoder))


def _same_data(a: dict, b: dict) -> bool:
    """Whether two variants read the same task (a distilled one's task label names its teacher)."""

    def data(record: dict) -> dict:
        found = dict(record.get("config", {}).get("data", {}))
        found.pop("distilled_dir", None)
        return found

    return data(a) == data(b)


def _gap_line(record: dict, ar: dict, decoder: str, ar_decoder: str, results: dict) -> str:
    nar, reference = _bleu(record, decoder), _bleu(ar, ar_decoder)
    data = "distilled data" if distilled(record) else "raw data"
    return (
        f"{record['name']} ({record['objective']}, {data}): {label_of(results, decoder)} BLEU "
        f"{nar['mean']:.1f} against {label_of(results, ar_decoder)}'s {reference['mean']:.1f} "
        f"({ar['name']}): a gap of {with_noise(*bleu_difference(ar, ar_decoder, record, decoder))}"
    )


def headline(rule: dict, record: dict) -> str:
    """The decoder a variant's gap is read at: its objective's own (rule["by_objective"]: GLAT's
    one pass, CTC's), else rule["decoder"]."""
    return rule.get("by_objective", {}).get(record.get("objective"), rule["decoder"])


def nar_gap(results: dict, spec: dict, rule: dict) -> list[str]:
    """The AR − non-AR BLEU gap per non-AR variant at its family's headline decoder
    (`headline`); raw against distilled where both exist."""
    against = rule["against"]
    records = results.get("variants", [])
    scored = [
        (r, ar)
        for r in records
        if r.get("non_ar")
        and (ar := baseline_of(results, r)) is not None
        and _bleu(r, headline(rule, r)) is not None
        and _bleu(ar, against) is not None
    ]
    out = []
    for record, ar in scored:
        decoder = headline(rule, record)
        text = _gap_line(record, ar, decoder, against, results)
        twin = next(
            (
                r for r, _ in scored
                if not distilled(r) and distilled(record) and _same_data(r, record)
                and (r["mask_kind"], r["objective"]) == (record["mask_kind"], record["objective"])
            ),
            None,
        )  # fmt: skip
        if twin is not None:
            raw_gap = _bleu(ar, against)["mean"] - _bleu(twin, decoder)["mean"]
            closed = with_noise(*bleu_difference(record, decoder, twin, decoder))
            text += (
                f"; on raw data ({twin['name']}) the gap is {raw_gap:.1f}, and distillation "
                f"closes {closed} of it"
            )
        out.append(text + ".")
    return out


def _refiner(params: dict) -> str | None:
    """Which refinement a predicted-length row runs: mask-predict's, a diffusion sampler's, or
    None for a row of neither (an oracle length, AR, CTC)."""
    if params.get("length_beam") is None:
        return None
    if params.get("iterations") is not None:
        return "mask-predict"
    if params.get("steps") is not None and params.get("top_p") is None:
        return f"diffusion ({params.get('strategy')})"
    return None


def passes(params: dict) -> int | None:
    """A non-AR row's sequential passes over the target: mask-predict's K, diffusion's T, one
    for CTC's canvas; None for a row that is not one-shot refinement (AR, exact-parallel)."""
    if params.get("draft") is not None or params.get("beams") is not None:
        return None
    if params.get("canvas_ratio") is not None:
        return 1
    return params.get("iterations") or params.get("steps")


def iterations(results: dict, spec: dict, rule: dict) -> list[str]:
    """Per non-AR variant: BLEU by passes (mask-predict's K, diffusion's T) per length beam and
    sampler, and what each buys."""
    out = []
    for record in results.get("variants", []):
        # (refiner, length beam) -> passes -> decoder id.
        by_beam: dict[tuple[str, int], dict[int, str]] = {}
        for decoder in per_decoder(record["metrics"], "bleu"):
            params = params_of(results, decoder)
            refiner = _refiner(params)
            if refiner is not None:
                key = (refiner, params["length_beam"])
                by_beam.setdefault(key, {})[passes(params)] = decoder

        def gain(better: str, base: str, record: dict = record) -> str:
            return with_noise(*bleu_difference(record, better, record, base))

        if not by_beam or max(len(ks) for ks in by_beam.values()) < 2:
            continue
        parts = []
        for (refiner, beam), by_k in sorted(by_beam.items()):
            ks = sorted(by_k)
            if len(ks) < 2:  # One row: no gain to state.
                continue
            scores = ", ".join(f"{_bleu(record, by_k[k])['mean']:.1f}" for k in ks)
            gained = gain(by_k[ks[-1]], by_k[ks[0]])
            parts.append(
                f"{refiner}, length beam {beam}: {scores} at K = "
                f"{', '.join(map(str, ks))} (K={ks[0]}→{ks[-1]}: {gained})"
            )
        text = f"{record['name']}: BLEU by passes K, " + "; ".join(parts)
        beams = sorted(beam for refiner, beam in by_beam if refiner == "mask-predict")
        if len(beams) > 1:
            low, high = by_beam[("mask-predict", beams[0])], by_beam[("mask-predict", beams[-1])]
            gains = "; ".join(
                f"{gain(high[k], low[k])} at K={k}" for k in sorted(set(low) & set(high))
            )
            text += f"; length beam {beams[-1]} over {beams[0]}: {gains}"
        out.append(text + ".")
    return out


def loss_and_sampler(results: dict, spec: dict, rule: dict) -> list[str]:
    """Per diffusion variant (MDLM) beside a mask-predict one (CMLM) of the same model config
    and data: the BLEU each diffusion sampler gains over mask-predict at the same passes and
    length beam, on the same sentences. The two differ only in the objective and the sampler
    (a GLAT reading the copied source has another model config, so it is not the match)."""
    records = results.get("variants", [])
    out = []

    def model_of(record: dict) -> dict:
        # max_len aside: diffusion reads one position more (Objective.reads_whole_sequence).
        model = dict(record.get("config", {}).get("model", {}))
        model.pop("max_len", None)
        return model

    for mdlm in records:
        if mdlm.get("model_kind") != "diffusion" or not mdlm.get("non_ar"):
            continue
        cmlm = next(
            (
                r for r in records
                if r.get("model_kind") == "masked" and model_of(r) == model_of(mdlm)
                and distilled(r) == distilled(mdlm) and _same_data(r, mdlm)
            ),
            None,
        )  # fmt: skip
        if cmlm is None:
            continue
        theirs = {
            passes(params_of(results, d)): d
            for d in per_decoder(cmlm["metrics"], "bleu")
            if _refiner(params_of(results, d)) == "mask-predict"
            and params_of(results, d)["length_beam"] == 1
        }
        parts = []
        for decoder in per_decoder(mdlm["metrics"], "bleu"):
            params = params_of(results, decoder)
            k = passes(params)
            if _refiner(params) is None or params["length_beam"] != 1 or k not in theirs:
                continue
            diff = with_noise(*bleu_difference(mdlm, decoder, cmlm, theirs[k]))
            parts.append(f"{label_of(results, decoder)} {diff} over {label_of(results, theirs[k])}")
        if parts:
            out.append(
                f"{mdlm['name']} (the diffusion loss) against {cmlm['name']} "
                f"({cmlm['objective']}), same model, data and passes: " + "; ".join(parts) + "."
            )
    return out


def _finds_its_length(params: dict) -> bool:
    """Whether a row finds each target's length itself, as AR does (the length head's, or CTC's
    collapse), rather than being given the reference's (an oracle length)."""
    return params.get("length_beam") is not None or params.get("canvas_ratio") is not None


def fastest_student(results: dict, spec: dict, rule: dict) -> list[str]:
    """The best non-AR row with at most rule["max_passes"] passes over the target (one-shot or
    few-pass decoding: CTC, mask-predict K, diffusion T) that finds its own length, and its gap
    to its AR baseline's rule["against"]: the fair fight's headline. It says how many rows it
    chose among (the best of many noisy rows is favoured) and each side's seeds."""
    against, found = rule["against"], []
    for record in results.get("variants", []):
        ar = baseline_of(results, record)
        if not record.get("non_ar") or ar is None or _bleu(ar, against) is None:
            continue
        for decoder in per_decoder(record["metrics"], "bleu"):
            params = params_of(results, decoder)
            k = passes(params)
            if k is not None and k <= rule["max_passes"] and _finds_its_length(params):
                found.append((_bleu(record, decoder)["mean"], record, decoder, ar))
    if not found:
        return []
    _, record, decoder, ar = max(found, key=lambda entry: entry[0])

    def seeds(r: dict) -> str:
        n = len(r.get("seeds") or [])
        return f"{n} seed{'s' * (n != 1)}"

    return [
        f"The best student with at most {rule['max_passes']} passes (of {len(found)} such rows, "
        "each finding its own length): "
        + _gap_line(record, ar, decoder, against, results)
        + f" ({seeds(record)}; {ar['name']} {seeds(ar)})."
    ]


def _speedups(record: dict, ar: dict, decoder: str, against: str) -> list[tuple[float, float]]:
    """[(speed-up, its sem) at batch 1, at the large batch] of `decoder` over `ar`'s `against`:
    the ratio of the median latencies, its sem from the two calls' spreads (relative sems in
    quadrature); [] where either was not timed."""
    metrics, ar_metrics = record["metrics"], ar["metrics"]
    found = []
    for key in ("latency_1", "latency_batch"):
        mine, theirs = metrics.get(f"{key}/{decoder}"), ar_metrics.get(f"{key}/{against}")
        if mine is None or theirs is None:
            return []
        ratio = theirs["mean"] / mine["mean"]
        relative = math.hypot(
            example_sem(mine) / mine["mean"], example_sem(theirs) / theirs["mean"]
        )
        found.append((ratio, ratio * relative))
    return found


def _times(speedup: tuple[float, float]) -> str:
    return f"{speedup[0]:.2f}× ± {speedup[1]:.2f}"


def _faster(speedup: tuple[float, float]) -> bool:
    """Faster than AR by more than 2 sem (a speed-up of 1 within 2 sem is noise)."""
    ratio, sem = speedup
    return ratio - 1 > 2 * sem


def latency_speedup(results: dict, spec: dict, rule: dict) -> list[str]:
    """Each parallel decoder's measured speed-up over AR at batch 1 and at the large batch;
    "faster" only by more than 2 sem."""
    against, families, out = rule["against"], rule["families"], []
    for record in results.get("variants", []):
        ar = baseline_of(results, record) or record
        size = record["metrics"].get("latency_batch_size")
        if size is None:
            continue
        large = int(size["mean"])
        found = []
        for decoder in per_decoder(record["metrics"], "latency_1"):
            if family_of(results, decoder) not in families:
                continue
            speedups = _speedups(record, ar, decoder, against)
            if speedups:
                found.append((decoder, *speedups))
        if not found:
            continue
        parts = [
            f"{label_of(results, d)} {_times(one)} and {_times(many)}" for d, one, many in found
        ]
        lost = [
            label_of(results, d) for d, one, many in found if _faster(one) and not _faster(many)
        ]
        kept = [label_of(results, d) for d, _, many in found if _faster(many)]
        text = (
            f"{record['name']}: speed-up over {label_of(results, against)} ({ar['name']}) at "
            f"batch 1 and batch {large}, measured: " + "; ".join(parts)
        )
        if lost:
            text += f". Faster at batch 1 but not at batch {large}: {', '.join(lost)}"
        text += (
            f". Still faster at batch {large} (by more than 2 sem): {', '.join(kept)}"
            if kept
            else f". None is faster at batch {large} by more than 2 sem"
        )
        out.append(text + ".")
    return out
