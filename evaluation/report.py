"""The comparison report: verdicts and tables from the numbers, then report.md, index.html,
results.json and the PNG figures, written atomically into runs/<name>/report/."""

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable

from evaluation import html, plots

REPORT_DIR = "report"
Table = tuple[list[str], list[list[str]]]  # (headers, rows of cells)


def fmt(metric: dict | None, digits: int = 3, percent: bool = False) -> str:
    """'mean ± sem' over seeds; with one seed, ± the sem over examples, marked †."""
    if metric is None:
        return "—"
    scale = 100.0 if percent else 1.0
    unit = "%" if percent else ""

    def number(x):
        if x == 0.0:
            return "0.0"
        return f"{scale * x:.1f}" if percent else f"{x:.{digits}g}"

    text = number(metric["mean"]) + unit
    if metric["sem"] is not None:
        return f"{text} ± {number(metric['sem'])}{unit}"
    example_sem = (metric.get("per_seed_sem") or [None])[0]
    if example_sem:
        return f"{text} ± {number(example_sem)}{unit}†"
    return text


def decoders_of(record: dict) -> list[str]:
    return [k.split("/", 1)[1] for k in record["metrics"] if k.startswith("exact_match/")]


def summary_table(records: list[dict]) -> Table:
    headers = [
        "variant",
        "task",
        "mask",
        "objective",
        "seeds",
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
                r["mask_kind"],
                r["objective"],
                str(len(r["seeds"])),
                fmt(m.get("perturbation_leakage")),
                fmt(m.get("dependency_future_share"), percent=True),
                fmt(m.get("loss_teacher_forced")),
                fmt(m.get("loss_honest")),
                f"{fmt(m.get('random_loss'))} ({floor['mean']:.3g})" if floor else "—",
                f"{r['train_tokens_per_s']:,.0f}" if r.get("train_tokens_per_s") else "—",
            ]
        )
    return headers, rows


def quality_table(records: list[dict]) -> Table:
    rows = [
        [
            r["name"],
            decoder,
            fmt(r["metrics"][f"exact_match/{decoder}"], percent=True),
            fmt(r["metrics"][f"token_accuracy/{decoder}"], percent=True),
        ]
        for r in records
        for decoder in decoders_of(r)
    ]
    return ["variant", "decoder (greedy)", "exact match", "token accuracy"], rows


def speed_tables(speed: dict) -> list[tuple[str, Table]]:
    tables = []
    if speed.get("sampling"):
        rows = [
            [
                s["decoder"],
                str(s["batch_size"]),
                str(s["length"]),
                f"{s['latency_s']:.3f}",
                f"{s['ms_per_token']:.3f}",
                f"{s['tokens_per_s']:,.0f}",
                f"{s['compile_s']:.2f}",
            ]
            for s in speed["sampling"]
        ]
        headers = [
            "decoder",
            "batch",
            "total length",
            "latency (s)",
            "ms / token",
            "tokens / s",
            "compile (s)",
        ]
        tables.append(("Sampling speed", (headers, rows)))
    if speed.get("training"):
        rows = [
            [
                t["objective"],
                str(t["seq_len"]),
                str(t["batch_size"]),
                f"{t['step_time_s']:.4f}",
                f"{t['tokens_per_s']:,.0f}",
                f"{t['compile_s']:.2f}",
            ]
            for t in speed["training"]
        ]
        headers = ["objective", "length", "batch", "step (s)", "tokens / s", "compile (s)"]
        tables.append(("Training speed", (headers, rows)))
    return tables


def _reference(records: list[dict], record: dict) -> dict | None:
    """The causal, teacher-forced variant on the same task: the honest baseline."""
    for r in records:
        if (r["task"], r["mask_kind"], r["objective"]) == (
            record["task"],
            "causal",
            "teacher_forcing",
        ):
            return r
    return None


def verdicts(records: list[dict], speed: dict) -> list[str]:
    """Sentences computed from the numbers, one claim each."""
    out = []
    for r in records:
        m, name = r["metrics"], r["name"]
        per_seed = m["perturbation_leakage"]["per_seed"]
        if max(per_seed) == 0.0:
            out.append(
                f"{name}: perturbation leakage is exactly 0.0 (fp32) in every seed; no "
                "scored prediction reads a later token."
            )
        else:
            out.append(
                f"{name}: changing the tokens after t moves the logits at positions ≤ t "
                f"by up to {max(per_seed):.3g}; it sees the future."
            )
        if "loss_honest" in m:
            tf, honest, gap = (
                m[k]["mean"] for k in ("loss_teacher_forced", "loss_honest", "leak_gap")
            )
            gap_sem = m["leak_gap"]["sem"] or (m["leak_gap"]["per_seed_sem"][0] or 0.0)
            ref = _reference(records, r)
            base = ""
            if ref is not None and ref is not r:
                base = (
                    f" (causal on {r['task']}: {ref['metrics']['loss_teacher_forced']['mean']:.3g}"
                    f" / {ref['metrics']['loss_honest']['mean']:.3g})"
                )
            if gap > max(0.05, 3 * gap_sem):
                out.append(
                    f"{name}: teacher-forced loss {tf:.3g} but honest loss {honest:.3g}"
                    f"{base}; it leaks, so its teacher-forced loss is not a LM loss."
                )
            else:
                out.append(
                    f"{name}: honest loss {honest:.3g} = teacher-forced loss {tf:.3g}"
                    f"{base}; nothing leaks into the scored predictions."
                )
            floor, rand = m["random_floor"]["mean"], m["random_loss"]
            rand_sem = rand["sem"] or (rand["per_seed_sem"][0] or 0.0)
            if rand["mean"] < floor - 3 * rand_sem:
                out.append(
                    f"{name}: loss {rand['mean']:.3g} on uniform random tokens is below "
                    f"the floor ln({round(2.718281828**floor)}) = {floor:.3g} that no "
                    "honest model can beat: proof of leakage."
                )
        for decoder in decoders_of(r):
            em = m[f"exact_match/{decoder}"]["mean"]
            out.append(f"{name}: greedy {decoder} exact match {100 * em:.1f}% on {r['task']}.")
    out.extend(_speed_verdicts(speed))
    return out


def _speed_verdicts(speed: dict) -> list[str]:
    out = []
    batch1 = {
        (s["decoder"], s["length"]): s for s in speed.get("sampling", []) if s["batch_size"] == 1
    }
    both = sorted(
        length
        for decoder, length in batch1
        if decoder == "no cache" and ("cache", length) in batch1
    )
    if both:
        ratios = [
            batch1["no cache", n]["latency_s"] / batch1["cache", n]["latency_s"] for n in both
        ]
        trend = "grows with length" if ratios[-1] > ratios[0] else "does not grow with length here"
        out.append(
            "KV cache vs no cache (batch 1): "
            + ", ".join(
                f"{ratio:.1f}× faster at {n} tokens" for n, ratio in zip(both, ratios, strict=True)
            )
            + f"; the speed-up {trend}."
        )
    training = {t["objective"]: t for t in speed.get("training", [])}
    if {"teacher_forcing", "sequential"} <= set(training):
        tf, seq = training["teacher_forcing"], training["sequential"]
        out.append(
            f"Training at length {tf['seq_len']}: teacher forcing "
            f"{tf['tokens_per_s']:,.0f} tokens/s vs sequential {seq['tokens_per_s']:,.0f}"
            f" ({tf['tokens_per_s'] / seq['tokens_per_s']:.1f}×): one parallel pass "
            "instead of one pass per position."
        )
    return out


def environment(repo_dir: str) -> dict:
    """Device, commit ("unknown" outside a git checkout) and library versions."""
    import importlib.metadata
    import platform

    import jax

    def git(*args):
        try:
            return subprocess.run(
                ["git", *args], cwd=repo_dir, capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    commit = git("rev-parse", "HEAD") or "unknown"
    dirty = (
        bool(git("status", "--porcelain", "--untracked-files=no")) if commit != "unknown" else None
    )
    devices = jax.devices()
    cpu = platform.processor() or platform.machine()
    versions = {}
    for package in ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "matplotlib"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    versions["python"] = platform.python_version()
    return {
        "device": {
            "platform": devices[0].platform,
            "kind": devices[0].device_kind,
            "count": len(devices),
            "host_cpu": cpu,
            "host_cores": os.cpu_count(),
        },
        "commit": commit,
        "commit_dirty": dirty,
        "versions": versions,
    }


def figures(records: list[dict], pictures: dict[str, dict], speed: dict) -> dict[str, bytes]:
    """File name -> PNG bytes of every figure the numbers allow."""
    out = {}
    drawn = [r for r in records if r["name"] in pictures]
    if drawn:
        names = [r["name"] for r in drawn]
        shares = [r["metrics"]["dependency_future_share"]["per_seed"][0] for r in drawn]
        out["dependency_maps.png"] = plots.dependency_maps(
            names, [pictures[n] for n in names], shares
        )
        out["attention_maps.png"] = plots.attention_maps(names, [pictures[n] for n in names])
    if any("loss_honest" in r["metrics"] for r in records):
        out["losses.png"] = plots.loss_bars(records)
    if any(c.get("train") for r in records for c in r["curves"].values()):
        out["loss_curves.png"] = plots.loss_curves(records)
    if speed.get("sampling"):
        out["sampling_speed.png"] = plots.sampling_speed(speed["sampling"])
    if speed.get("training"):
        out["training_speed.png"] = plots.training_speed(speed["training"])
    return out


def write_report(
    workdir: str,
    results: dict,
    images: dict[str, bytes],
    render: Callable[[dict, dict[str, bytes]], dict[str, str]] | None = None,
) -> str:
    """Writes report/ atomically: built in a temp dir beside it, then swapped in by renames.

    If anything raises before the swap, the previous report/ is untouched. Returns its path.
    """
    render = render or render_all
    final = os.path.join(workdir, REPORT_DIR)
    staging = tempfile.mkdtemp(prefix=".report-tmp-", dir=workdir)
    try:
        for name, content in render(results, images).items():
            with open(os.path.join(staging, name), "w", encoding="utf-8") as f:
                f.write(content)
        for name, png in images.items():
            with open(os.path.join(staging, name), "wb") as f:
                f.write(png)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    # Two renames (a directory cannot replace a non-empty one in one step); if the second
    # fails, the old report goes back.
    old = None
    if os.path.exists(final):
        old = tempfile.mkdtemp(prefix=".report-old-", dir=workdir)
        os.replace(final, os.path.join(old, REPORT_DIR))
    try:
        os.replace(staging, final)
    except BaseException:
        if old:
            os.replace(os.path.join(old, REPORT_DIR), final)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if old:
        shutil.rmtree(old, ignore_errors=True)
    return final


def render_all(results: dict, images: dict[str, bytes]) -> dict[str, str]:
    """The text files of the report."""
    return {
        "results.json": json.dumps(results, indent=1, allow_nan=False) + "\n",
        "report.md": html.markdown(results, images, tables(results)),
        "index.html": html.page(results, images, tables(results)),
    }


def tables(results: dict) -> list[tuple[str, Table]]:
    """(title, table) of every table in the report."""
    records = results["variants"]
    out = [
        ("Summary (mean ± sem over seeds; † = one seed, sem over examples)", summary_table(records))
    ]
    quality = quality_table(records)
    if quality[1]:
        out.append(("Greedy generation on held-out examples", quality))
    return out + speed_tables(results.get("speed", {}))
