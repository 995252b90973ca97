"""Held-out loss (teacher-forced and honest), the random-token floor, and greedy AR generation.

Shape legend: B rows, T positions, V vocab, P prompt width, N new tokens.
"""

import functools
import math

import ml_collections
import numpy as np

import data
from data import vocab
from evaluation import forward
from model import Decoder, generate, generate_no_cache

# Decoders by attention mask kind. A KV cache is exact only under a causal mask (the prefix-LM's
# prompt is prefilled in one pass, so it is exact there too); a full-mask model decoded with the
# cache is a different (causal-at-decode) function, shown because it is what naive code runs.
DECODERS = {
    "causal": ("AR (cache)",),
    "prefix": ("AR (cache)",),
    "full": ("AR (no cache, honest)", "AR (cache, naive)"),
    "prefix_full": ("AR (no cache, honest)", "AR (cache, naive)"),  # Its targets see later ones.
}


def mean_sem(values) -> tuple[float, float]:
    """Mean and standard error of the mean (0.0 for a single value)."""
    values = np.asarray(values, np.float64)
    sem = values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return float(values.mean()), float(sem)


def eval_batches(task, num_examples: int, batch_size: int, split: str = "eval"):
    """The first `num_examples` rows of `split`, as batches of at most `batch_size`."""
    for step in range(math.ceil(num_examples / batch_size)):
        size = min(batch_size, num_examples - step * batch_size)
        yield (
            task.batch(step, batch_size, split=split)
            if size == batch_size
            else {k: v[:size] for k, v in task.batch(step, batch_size, split=split).items()}
        )


def example_losses(logits_BxTxV: np.ndarray, batch: dict[str, np.ndarray]) -> np.ndarray:
    """Per-row mean cross-entropy (nats) over the row's loss_mask."""
    shifted_BxTxV = logits_BxTxV - logits_BxTxV.max(axis=-1, keepdims=True)
    log_z_BxT = np.log(np.exp(shifted_BxTxV).sum(axis=-1))
    target_BxT = np.take_along_axis(shifted_BxTxV, batch["targets"][..., None], axis=-1)[..., 0]
    mask_BxT = batch["loss_mask"]
    return ((log_z_BxT - target_BxT) * mask_BxT).sum(axis=1) / np.maximum(mask_BxT.sum(axis=1), 1)


def losses(model: Decoder, task, num_examples: int, batch_size: int) -> dict[str, np.ndarray]:
    """Per-example held-out losses: "teacher_forced" and "honest" (from the prefix alone)."""
    per_example = {"teacher_forced": [], "honest": []}
    for batch in eval_batches(task, num_examples, batch_size):
        args = (batch["inputs"], batch["lengths"], batch["prefix_lengths"])
        per_example["teacher_forced"].append(example_losses(forward.logits(model, *args), batch))
        per_example["honest"].append(example_losses(forward.honest_logits(model, *args), batch))
    return {name: np.concatenate(values) for name, values in per_example.items()}


def random_task(data_config: ml_collections.ConfigDict, max_len: int):
    """The `random` task with the data config's symbols and lengths, fitted to the model."""
    config = ml_collections.ConfigDict(data_config.to_dict())
    if config.task not in data.synthetic.TASKS:
        config.num_symbols = vocab.NUM_BYTES  # Byte-level text: 256 symbols.
    config.task, config.seq_len, config.loss_on = "random", 0, "target"
    config.max_len = min(config.max_len, max_len - 1)
    config.min_len = min(config.min_len, config.max_len)
    return data.make_task(config)


def random_floor(
    model: Decoder, data_config: ml_collections.ConfigDict, num_examples: int, batch_size: int
) -> dict[str, float]:
    """Teacher-forced loss on uniform random symbols, and the honest floor ln(num_symbols)."""
    task = random_task(data_config, model.cfg.max_len)
    per_example = [
        example_losses(forward.logits(model, b["inputs"], b["lengths"], b["prefix_lengths"]), b)
        for b in eval_batches(task, num_examples, batch_size)
    ]
    loss, sem = mean_sem(np.concatenate(per_example))
    return {"loss": loss, "loss_sem": sem, "floor": math.log(task.num_symbols)}


def split_prompts(batch: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, list]:
    """Right-padded prompts [B, P], their lengths, and each row's reference continuation."""
    prefix_B, lengths_B = batch["prefix_lengths"], batch["lengths"]
    P = int(prefix_B.max())
    position_P = np.arange(P)[None]
    prompts_BxP = np.where(position_P < prefix_B[:, None], batch["inputs"][:, :P], vocab.PAD)
    references = [batch["targets"][b, prefix_B[b] - 1 : lengths_B[b]] for b in range(len(prefix_B))]
    return prompts_BxP.astype(np.int32), prefix_B.astype(np.int32), references


def greedy_decode(
    model: Decoder, batch: dict[str, np.ndarray], decoder: str
) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Greedy continuations of each row's prompt with `decoder`, references, and prompts."""
    prompts_BxP, prefix_B, references = split_prompts(batch)
    P = prompts_BxP.shape[1]
    # A row ends at most at index max_len (generate allows P + new tokens = max_len + 1). Only
    # when the longest prompt and the longest reference belong to different rows can a reference
    # not fit; it is then cut to what fits (see the report's notes).
    max_new = min(max(len(r) for r in references), model.cfg.max_len + 1 - P)
    sampler = generate_no_cache if "no cache" in decoder else generate
    out = sampler(model, prompts_BxP, prefix_B, max_new_tokens=max_new, eos_id=vocab.EOS)
    tokens_BxL, lengths_B = np.asarray(out.tokens_BxL), np.asarray(out.lengths_B)
    generated = [tokens_BxL[b, prefix_B[b] : lengths_B[b]] for b in range(len(prefix_B))]
    return generated, [r[:max_new] for r in references], prompts_BxP


def score(generated: list[np.ndarray], references: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    """Per-row exact match (0/1) and token accuracy against the reference continuation."""
    exact, accuracy = [], []
    for gen, ref in zip(generated, references, strict=True):
        padded = np.full(len(ref), -1)
        padded[: min(len(gen), len(ref))] = gen[: len(ref)]
        exact.append(float(len(gen) == len(ref) and np.array_equal(gen, ref)))
        accuracy.append(float(np.mean(padded == ref)))
    return np.array(exact), np.array(accuracy)


def render_tokens(ids: np.ndarray, num_symbols: int) -> str:
    """Readable text of token ids: bytes for byte tasks, letters for small symbol sets."""
    special = {vocab.PAD: "·", vocab.BOS: "^", vocab.EOS: "$", vocab.SEP: "|", vocab.MASK: "_"}
    if num_symbols == vocab.NUM_BYTES:
        return "".join(
            special[i] if i in special else bytes([i - vocab.FIRST_SYMBOL]).decode("latin-1")
            for i in map(int, ids)
        )
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return "".join(
        special.get(i)
        or (letters[i - vocab.FIRST_SYMBOL] if i - vocab.FIRST_SYMBOL < len(letters) else f"<{i}>")
        for i in map(int, ids)
    )


def generation_quality(
    model: Decoder, task, num_examples: int, batch_size: int, num_samples: int
) -> dict[str, dict]:
    """Per decoder: per-row exact match and token accuracy, plus a few rendered samples."""
    results = {}
    for decoder in DECODERS[model.cfg.attention_mask_kind]:
        exact, accuracy, samples = [], [], []
        show = functools.partial(render_tokens, num_symbols=task.num_symbols)
        for batch in eval_batches(task, num_examples, batch_size):
            generated, references, prompts_BxP = greedy_decode(model, batch, decoder)
            e, a = score(generated, references)
            exact.append(e)
            accuracy.append(a)
            for b in range(min(num_samples - len(samples), len(generated))):
                prompt = prompts_BxP[b, : batch["prefix_lengths"][b]]
                mark = "✓" if e[b] else "✗"
                samples.append(
                    f"{show(prompt)}  →  {show(generated[b])}   (reference {show(references[b])}) "
                    f"{mark}"
                )
        results[decoder] = {
            "exact_match": np.concatenate(exact),
            "token_accuracy": np.concatenate(accuracy),
            "samples": samples,
        }
    return results
