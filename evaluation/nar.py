"""Non-AR evaluation: mask-predict vs the AR baseline, on quality and on speed.

Quality is scored on the task's held-out split: the prompt is inputs[:, :prefix_len] and the
reference is targets[prefix_len - 1 : lengths], the target tokens then EOS. Mask-predict is given
each row's target length (the source length, for the length-preserving tasks only), and appends
EOS after it; the AR decoder has to find the end itself. Exact match is the share of rows whose
whole reference matches; token accuracy is the share of reference tokens that match.

Speed does not depend on the weights, so it is timed on untrained models of the same shape
(causal for AR; the CMLM model's own mask for mask-predict) whose max_len fits the longest
target: prompt = BOS, source, SEP with a source as long as the target. Each timing is the
median of several runs; the first call's extra time (compilation) is reported separately as
compile_s.
"""

import dataclasses
import functools
import os

import ml_collections
import numpy as np
from flax import nnx

from data import vocab
from evaluation.speed import time_call
from model import NAR_MASK_KINDS, Decoder, generate, make_decoder
from model.nar import mask_predict

AR_NAME = "AR (cache)"


def default_nar_config() -> ml_collections.ConfigDict:
    """Defaults for `config.eval.nar`; an experiment may set any of them."""
    return ml_collections.ConfigDict(
        {
            "iterations": (1, 2, 4, 8),  # Mask-predict passes K to score.
            "ar_variant": "",  # The causal variant that is this one's AR baseline (for eval.py).
            "speed_batch_sizes": (1, 64),
            "speed_target_lens": (32, 64, 128, 256),
            "speed_iterations": (1, 4),
            "speed_repeats": 5,
            "num_samples": 3,
        }
    )


def nar_settings(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """`config.eval.nar` over the defaults (experiments without that section get the defaults)."""
    settings = default_nar_config()
    if "eval" in config and "nar" in config.eval:
        settings.update(dict(config.eval.nar))
    return settings


def evaluate_nar(
    model: Decoder, task, config: ml_collections.ConfigDict, ar_model: Decoder | None = None
) -> dict:
    """Quality (AR vs mask-predict at each K), speed, verdicts and samples, as lists of records.

    `model` is the CMLM model (mask prefix_full or full). `ar_model` is the AR baseline, a
    different model (the causal variant of the same experiment, named by
    `config.eval.nar.ar_variant`: load it from `ar_baseline_run_dir(run_dir, config)`); without
    it the quality table holds mask-predict only, and speed is still compared.
    """
    settings = nar_settings(config)
    if not task.length_preserving:
        raise ValueError(
            f"Mask-predict here needs the target length: task {task.name!r} is not length "
            "preserving and there is no length-prediction head (use copy, reverse or sort)."
        )
    num_examples = config.eval.get("num_examples", 256)
    batch_size = config.eval.get("batch_size", 64)
    batches = [
        task.batch(step, batch_size, split="eval")
        for step in range(max(1, -(-num_examples // batch_size)))
    ]
    quality, outputs = quality_records(model, ar_model, batches, tuple(settings.iterations))
    # max_len is set by speed_records; normalised here so the cache key ignores it.
    speed = [
        dict(record)
        for record in _speed_records_once(
            dataclasses.replace(model.cfg, max_len=1),
            batch_sizes=tuple(settings.speed_batch_sizes),
            target_lens=tuple(settings.speed_target_lens),
            iterations=tuple(settings.speed_iterations),
            repeats=settings.speed_repeats,
        )
    ]
    return {
        "quality": quality,
        "speed": speed,
        "verdicts": verdicts(quality, speed, task.name),
        "samples": samples(batches[0], outputs, settings.num_samples),
    }


def compare_ar_nar(
    ar_model: Decoder, nar_model: Decoder, task, config: ml_collections.ConfigDict
) -> dict:
    """`evaluate_nar` with its AR baseline: the causal model trained on the same task."""
    return evaluate_nar(nar_model, task, config, ar_model=ar_model)


def ar_baseline_run_dir(run_dir: str, config: ml_collections.ConfigDict) -> str | None:
    """The run of this variant's AR baseline (`eval.nar.ar_variant`, same seed), if trained.

    Runs live in <workdir>/<variant>/seed_<s> (train.py), so the baseline is a sibling folder.
    """
    ar_variant = nar_settings(config).ar_variant
    if not ar_variant:
        return None
    run_dir = os.path.normpath(run_dir)
    workdir, seed_dir = os.path.dirname(os.path.dirname(run_dir)), os.path.basename(run_dir)
    path = os.path.join(workdir, ar_variant, seed_dir)
    return path if os.path.isdir(path) else None


def quality_records(
    nar_model: Decoder, ar_model: Decoder | None, batches: list[dict], iterations: tuple[int, ...]
) -> tuple[list[dict], dict[str, list[np.ndarray]]]:
    """Exact match and token accuracy per decoder, and each decoder's continuations per batch."""
    # One prompt and target width for all batches, so each decoder compiles once.
    P = max(int(b["prefix_lengths"].max()) for b in batches)
    max_target = max(int((b["prefix_lengths"] - 2).max()) for b in batches)
    decoders = {}
    if ar_model is not None:
        # generate never feeds its last token back, so a row may end at index max_len.
        max_new = min(max_target + 1, ar_model.cfg.max_len + 1 - P)

        def run_ar(prompts_BxP, prompt_lengths_B, target_lengths_B):
            return generate(
                ar_model, prompts_BxP, prompt_lengths_B, max_new_tokens=max_new, eos_id=vocab.EOS
            )

        decoders[AR_NAME] = run_ar
    for K in iterations:

        def run_nar(prompts_BxP, prompt_lengths_B, target_lengths_B, K=K):
            return mask_predict(
                nar_model,
                prompts_BxP,
                prompt_lengths_B,
                target_lengths_B,
                num_iterations=K,
                eos_id=vocab.EOS,
                max_target_len=max_target,
            )

        decoders[f"mask-predict K={K}"] = run_nar
    records, outputs = [], {}
    for name, decode in decoders.items():
        correct, valid, outputs[name] = [], [], []
        for batch in batches:
            prefix_B = batch["prefix_lengths"]
            prompts_BxP = np.where(
                np.arange(P) < prefix_B[:, None], batch["inputs"][:, :P], vocab.PAD
            )
            out = decode(prompts_BxP, prefix_B, prefix_B - 2)
            c, v, continuation = _score(np.asarray(out.tokens_BxL), batch)
            correct.append(c)
            valid.append(v)
            outputs[name].append(continuation)
        correct_NxR, valid_NxR = np.concatenate(correct), np.concatenate(valid)
        records.append(
            {
                "decoder": name,
                "exact_match": float(np.all(correct_NxR | ~valid_NxR, axis=1).mean()),
                "token_accuracy": float(correct_NxR[valid_NxR].mean()),
            }
        )
    return records, outputs


def _score(tokens_BxL: np.ndarray, batch: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per reference token: matched, and scored; plus the decoded continuations [B, R].

    The reference is the target tokens then EOS (R = the longest). A reference token is scored
    when it exists and the decoder's buffer had a slot for it (an AR model whose max_len leaves
    no room for the final EOS is scored on the target tokens alone).
    """
    prefix_B, lengths_B = batch["prefix_lengths"], batch["lengths"]
    R = int((lengths_B - prefix_B + 1).max())
    index_BxR = prefix_B[:, None] - 1 + np.arange(R)
    exists_BxR = index_BxR <= lengths_B[:, None] - 1
    reference_BxR = np.take_along_axis(
        batch["targets"], np.minimum(index_BxR, lengths_B[:, None] - 1), 1
    )
    out_index_BxR = index_BxR + 1
    in_buffer_BxR = out_index_BxR < tokens_BxL.shape[1]
    continuation_BxR = np.take_along_axis(
        tokens_BxL, np.minimum(out_index_BxR, tokens_BxL.shape[1] - 1), 1
    )
    valid_BxR = exists_BxR & in_buffer_BxR
    return (
        (continuation_BxR == reference_BxR) & valid_BxR,
        valid_BxR,
        np.where(exists_BxR, continuation_BxR, vocab.PAD),
    )


@functools.lru_cache(maxsize=4)
def _speed_records_once(model_cfg, **settings) -> tuple[dict, ...]:
    """`speed_records` once per shape: speed does not depend on the weights, so e.g. reverse_nar
    and sort_nar, evaluated in one process, share a timing run."""
    return tuple(speed_records(model_cfg, **settings))


def speed_records(
    model_cfg,
    *,
    batch_sizes: tuple[int, ...],
    target_lens: tuple[int, ...],
    iterations: tuple[int, ...],
    repeats: int,
) -> list[dict]:
    """Latency and throughput of AR (cache) and mask-predict on untrained models of one shape."""
    max_len = 2 * max(target_lens) + 2  # BOS, source, SEP, then the target.
    ar = make_decoder(
        dataclasses.replace(model_cfg, max_len=max_len, attention_mask_kind="causal"), 0
    )
    nar_mask = model_cfg.attention_mask_kind
    nar = make_decoder(
        dataclasses.replace(
            model_cfg,
            max_len=max_len,
            attention_mask_kind=nar_mask if nar_mask in NAR_MASK_KINDS else "prefix_full",
        ),
        0,
    )
    # Split once: both decoders then skip the graph traversal that nnx.split costs every call.
    ar, nar = nnx.split(ar), nnx.split(nar)
    rng = np.random.default_rng(0)
    records = []
    for batch_size in batch_sizes:
        for T in target_lens:
            source_BxT = rng.integers(vocab.FIRST_SYMBOL, model_cfg.vocab_size, (batch_size, T))
            prompts_BxP = np.concatenate(
                [
                    np.full((batch_size, 1), vocab.BOS),
                    source_BxT,
                    np.full((batch_size, 1), vocab.SEP),
                ],
                axis=1,
            ).astype(np.int32)
            prompt_lengths_B = np.full((batch_size,), T + 2, np.int32)
            target_lengths_B = np.full((batch_size,), T, np.int32)
            runs = {
                AR_NAME: functools.partial(
                    generate, ar, prompts_BxP, prompt_lengths_B, max_new_tokens=T
                )
            }
            for K in iterations:
                runs[f"mask-predict K={K}"] = functools.partial(
                    mask_predict,
                    nar,
                    prompts_BxP,
                    prompt_lengths_B,
                    target_lengths_B,
                    num_iterations=K,
                )
            for name, fn in runs.items():
                compile_s, latency = time_call(fn, repeats)
                records.append(
                    {
                        "decoder": name,
                        "batch_size": batch_size,
                        "target_len": T,
                        "latency_s": latency,
                        "tokens_per_s": batch_size * T / latency,
                        "compile_s": compile_s,
                    }
                )
    return records


def verdicts(quality: list[dict], speed: list[dict], task_name: str) -> list[str]:
    """Sentences computed from the quality and speed records."""
    sentences = []
    by_name = {r["decoder"]: r for r in quality}
    ar = by_name.get(AR_NAME)
    for record in quality:
        if record["decoder"] == AR_NAME:
            continue
        em = 100 * record["exact_match"]
        if ar is None:
            sentences.append(
                f"{record['decoder']} reaches {em:.1f}% exact match on {task_name} "
                "(no AR baseline given)."
            )
            continue
        gap = em - 100 * ar["exact_match"]
        if abs(gap) < 0.05:
            relation = "matches"
        elif abs(gap) <= 1:
            relation = f"is within {abs(gap):.1f} points of"
        else:
            relation = f"is {abs(gap):.1f} points {'above' if gap > 0 else 'below'}"
        sentences.append(
            f"{record['decoder']} {relation} AR exact match on {task_name} "
            f"({em:.1f}% vs {100 * ar['exact_match']:.1f}%)."
        )
    timings = {(r["decoder"], r["batch_size"], r["target_len"]): r["latency_s"] for r in speed}
    nar_names = sorted(
        {r["decoder"] for r in speed if r["decoder"] != AR_NAME}, key=lambda n: int(n.split("=")[1])
    )
    for batch_size, T in sorted({(r["batch_size"], r["target_len"]) for r in speed}):
        ar_s = timings.get((AR_NAME, batch_size, T))
        if ar_s is None:
            continue
        parts = []
        for name in nar_names:
            nar_s = timings.get((name, batch_size, T))
            if nar_s is not None:
                ratio = max(ar_s, nar_s) / min(ar_s, nar_s)
                who = f"{ratio:.1f}x faster" if nar_s < ar_s else f"AR {ratio:.1f}x faster"
                parts.append(f"{name} takes {1e3 * nar_s:.1f} ms ({who})")
        if parts:
            sentences.append(
                f"At batch {batch_size}, target length {T}, AR takes {1e3 * ar_s:.1f} ms; "
                + "; ".join(parts)
                + "."
            )
    return sentences


def samples(batch: dict, outputs: dict[str, list[np.ndarray]], num_samples: int) -> list[str]:
    """The first rows of the first batch: source, reference and each decoder's continuation."""
    lines = []
    for row in range(min(num_samples, len(batch["prefix_lengths"]))):
        prefix, length = int(batch["prefix_lengths"][row]), int(batch["lengths"][row])
        parts = [
            f"source {_text(batch['inputs'][row, 1 : prefix - 1])}",
            f"reference {_text(batch['targets'][row, prefix - 1 : length])}",
        ]
        parts += [f"{name} {_text(out[0][row])}" for name, out in outputs.items()]
        lines.append(" | ".join(parts))
    return lines


def _text(ids: np.ndarray) -> str:
    """Symbols as their index (0, 1, ...), specials by name, padding dropped."""
    names = {vocab.EOS: "EOS", vocab.MASK: "MASK", vocab.BOS: "BOS", vocab.SEP: "SEP"}
    return " ".join(
        names.get(int(i), str(int(i) - vocab.FIRST_SYMBOL)) for i in ids if i != vocab.PAD
    )
