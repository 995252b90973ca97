"""Masked-diffusion sampling: MDLM's ancestral sampler, confidence-based unmasking, and block
diffusion (BD3-LM) with a KV cache of the finished blocks.

A model trained with the diffusion objective (each target token replaced by MASK with
probability t) predicts the clean token at every masked position. Sampling starts from an
all-MASK target and runs T denoising steps (model/denoise.py: the ancestral and confidence
strategies, the proposals, the reuse of logits where nothing changed).
A `block_causal` model (ModelConfig.block_size) is sampled block by block, left to right, T steps
per block (the block loop: model/diffusion_blocks.py); a `full` or `prefix_full` model is one block
covering the targets. Where the prompt never sees the targets (`prefix_full`, `block_causal`) the
prompt and each finished block are written once into a KV cache: a denoising step feeds only the
current block, at the cache's index, and discards the cache it returns; a finished block is fed
once more, clean, to write its keys and values. Without the cache, every step runs the whole
row [prompt, finished blocks, current block]: exact for every mask kind, and the reference the
cached sampler is tested against.

An encoder-decoder runs its encoder once per call (the length head reads the same pass), and
each step runs the decoder over the target slots alone, as mask-predict does (model/nar.py).

Target lengths are given by the caller (the evaluation's oracle lengths), as mask-predict's are,
or are the model's own: a block model ends each row at the first EOS it writes (BD3-LM), and
another takes its length head's likeliest.
The number of steps T, the temperature, top-k and top-p are traced: new values never recompile.
Shape legend: B rows, P prompt width, N target width (whole blocks), K block size, V vocab.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from model.architectures import architecture_of
from model.checks import (
    check_fill_ids,
    check_prompt_cache,
    check_prompts,
    check_rng,
    check_targets,
    is_int,
    is_real,
)
from model.decoder import Decoder, split_model
from model.denoise import DIFFUSION_STRATEGIES
from model.diffusion import scores_eos_as_token
from model.diffusion_blocks import sample_targets
from model.masks import kinds_where
from model.nar import likeliest_lengths, predicted_lengths
from model.sampling import SamplingParams, prompt_buffer

INT32_MAX = int(np.iinfo(np.int32).max)  # num_steps is traced as an int32.


class DiffusionOutput(NamedTuple):
    """`GenerateOutput`'s two fields, then the sampler's work."""

    tokens_BxL: jax.Array  # Prompt, target, EOS (if any), then pad_id.
    lengths_B: jax.Array  # Prompt + target (+ 1 for EOS).
    # Model calls per block of the call (the same for every row: a call runs the whole batch);
    # at most num_steps, fewer where steps unmasked nothing (their logits are reused).
    calls_per_block_B: jax.Array


@functools.partial(
    jax.jit,
    static_argnames=(
        "graphdef", "max_target_len", "strategy", "mask_id", "pad_id", "use_cache", "own_length",
    ),
)  # fmt: skip
def _diffusion_jit(
    graphdef, state, prompts_BxP, prompt_lengths_B, target_lengths_B, rng, num_steps,
    sampling, eos_id, *, max_target_len, strategy, mask_id, pad_id, use_cache, own_length,
) -> DiffusionOutput:  # fmt: skip
    model = nnx.merge(graphdef, state)
    P = prompts_BxP.shape[1]
    # Whatever the caller left in a row's padding becomes pad_id: it is embedded, though unseen.
    prompts_BxP = prompt_buffer(prompts_BxP, prompt_lengths_B, P, pad_id)
    memory = last_BxD = None
    if use_cache and model.encodes_prompt:  # The encoder's one pass of this call.
        memory, last_BxD = model.encode_prompt(prompts_BxP, prompt_lengths_B)
    if own_length == "head":  # The length head's likeliest length (a length beam of 1).
        target_lengths_B = likeliest_lengths(
            model, prompts_BxP, prompt_lengths_B, last_BxD, max_target_len, 1
        )[:, 0]
    sampled = sample_targets(
        model, prompts_BxP, prompt_lengths_B, target_lengths_B, rng, num_steps, sampling, memory,
        max_target_len=max_target_len, strategy=strategy, mask_id=mask_id, pad_id=pad_id,
        use_cache=use_cache, eos_id=eos_id if own_length == "eos" else None,
    )  # fmt: skip
    targets_BxN = sampled.targets_BxN
    # The layout of `generate`: prompt, target, EOS (if any), then pad_id; width P + T + 1.
    L = P + max_target_len + 1
    cols_1xL = jnp.arange(L)[None, :]
    ends_B = prompt_lengths_B + sampled.lengths_B
    offsets_BxL = jnp.clip(cols_1xL - prompt_lengths_B[:, None], 0, targets_BxN.shape[1] - 1)
    tokens_BxL = prompt_buffer(prompts_BxP, prompt_lengths_B, L, pad_id)
    in_target_BxL = (cols_1xL >= prompt_lengths_B[:, None]) & (cols_1xL < ends_B[:, None])
    tokens_BxL = jnp.where(
        in_target_BxL, jnp.take_along_axis(targets_BxN, offsets_BxL, axis=1), tokens_BxL
    )
    # EOS after each target; where a row ends at its own EOS, only after a row that wrote one.
    with_eos_B = (eos_id >= 0) & sampled.ended_B
    tokens_BxL = jnp.where((cols_1xL == ends_B[:, None]) & with_eos_B[:, None], eos_id, tokens_BxL)
    return DiffusionOutput(
        tokens_BxL,
        ends_B + with_eos_B.astype(jnp.int32),
        jnp.broadcast_to(sampled.calls_per_block, ends_B.shape),
    )


def diffusion_generate(
    model: Decoder | tuple[nnx.GraphDef, nnx.State],
    prompts_BxP,
    prompt_lengths_B,
    target_lengths_B,
    *,
    num_steps: int,
    mask_id: int,
    strategy: str = "ancestral",
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    rng: jax.Array | None = None,
    pad_id: int = 0,
    eos_id: int | None = None,
    max_target_len: int | None = None,
    use_cache: bool | None = None,
) -> DiffusionOutput:
    """Samples each row's target of a given length from a masked-diffusion model.

    Args:
      model: a Decoder, or its `nnx.split` (graphdef, state), under a `full`, `prefix_full` or
        `block_causal` mask, trained with the diffusion objective. Its mask is checked; its
        training objective cannot be (a model does not record it): eval's diffusion rows check
        the run's config.json, and a caller passing weights of another objective gets samples
        of a model that was never trained to denoise.
      prompts_BxP: int token ids, each row right-padded; rows may have different lengths.
      prompt_lengths_B: each row's prompt length (None: P for every row).
      target_lengths_B: each row's number of target tokens (>= 1): the oracle length; or None,
        the model's own: a block model (block_causal) writes blocks until one holds EOS, and
        the row ends there (BD3-LM; blocks stop once every row has ended; a row that writes
        none fills max_target_len and gets no EOS); another takes its length head's likeliest
        (`length_head=True`). max_target_len then defaults to max_len - P.
      num_steps: T >= 1 denoising steps (per block for a block_causal model); traced.
      mask_id: the MASK token id the model was trained with (data/vocab.py).
      strategy: "ancestral" (MDLM) or "confidence" (most confident first).
      temperature: of the token proposals, >= 0 (0: argmax); traced.
      top_k, top_p: proposals only from the k likeliest tokens (0: off) and the smallest set
        holding mass top_p (1: off), as BD3-LM (p = 0.9) and MD4 sample; traced.
      rng: a jax.random.key (None: key(0)); the unmasking order of `ancestral` draws from it
        even at temperature 0.
      pad_id: what fills each row after its end; eos_id: appended after each target (None: not).
      max_target_len: the static target width (default: the longest target length); fix it to
        reuse one compiled program across batches.
      use_cache: cache the prompt and the finished blocks (exact for prefix_full and
        block_causal, where the prompt never sees the targets), or run an encoder-decoder's
        encoder once, each step the decoder over the target slots alone. None: wherever it is
        exact; False runs the whole row at every step (the reference for the cache).
    Returns:
      DiffusionOutput(tokens_BxL, lengths_B, calls_per_block_B) with L = P + max_target_len +
      1, as `mask_predict` returns its first two: prompt, target, EOS (if eos_id is given),
      then pad_id; and the model calls each block took (at most num_steps).
    """
    graphdef, state, cfg = split_model(model)
    own_length = "" if target_lengths_B is not None else _own_length(cfg, eos_id)
    if own_length == "head":
        target_lengths_B, max_target_len = predicted_lengths(
            cfg, prompts_BxP, max_target_len, 1, "diffusion_generate"
        )
    elif own_length == "eos":  # Room for every row; each ends at the EOS it writes.
        B, P = np.shape(prompts_BxP)
        max_target_len = cfg.max_len - P if max_target_len is None else max_target_len
        target_lengths_B = np.full((B,), max_target_len, np.int32)
    prompts_BxP, prompt_lengths_B, target_lengths_B, max_target_len = _check_inputs(
        cfg, prompts_BxP, prompt_lengths_B, target_lengths_B, max_target_len
    )
    _check_schedule(num_steps, strategy, temperature)
    sampling = SamplingParams.checked(temperature, top_k, top_p)
    mask_id, pad_id, eos_id = check_fill_ids(cfg, mask_id, pad_id, eos_id)
    use_cache = check_prompt_cache(
        cfg, use_cache, "diffusion_generate", lambda k: k.caches_prompt and k.target_view != "past",
        "step", encodes_prompt=architecture_of(cfg).encodes_prompt,
    )  # fmt: skip
    return _diffusion_jit(
        graphdef, state, prompts_BxP, prompt_lengths_B, target_lengths_B, check_rng(rng),
        jnp.int32(num_steps), sampling, jnp.int32(-1 if eos_id is None else eos_id),
        max_target_len=max_target_len, strategy=strategy, mask_id=mask_id, pad_id=pad_id,
        use_cache=use_cache, own_length=own_length,
    )  # fmt: skip


def _own_length(cfg, eos_id) -> str:
    """How a model finds a row's length where none is given: "eos", a block model writes blocks
    until one holds EOS (BD3-LM; `model.diffusion.scores_eos_as_token`); "head", the others
    take their length head's likeliest."""
    if not scores_eos_as_token(cfg):
        return "head"
    if eos_id is None:
        raise ValueError(
            "diffusion_generate without target_lengths on a block model (block_causal) ends "
            "each row at the first EOS it writes: give eos_id"
        )
    return "eos"


def _check_inputs(cfg, prompts_BxP, prompt_lengths_B, target_lengths_B, max_target_len):
    """The model, the prompts and the target lengths, checked on the host: (prompts, prompt
    lengths, target lengths as int32, the static target width)."""
    if cfg.mask.target_view == "past":
        denoisers = kinds_where(lambda kind: kind.target_view != "past")
        raise ValueError(
            f"diffusion_generate needs a model whose targets see each other within a block "
            f"({denoisers}), trained with the diffusion objective; this model's "
            f"attention_mask_kind is {cfg.attention_mask_kind!r}"
        )
    prompts_BxP, prompt_lengths_B = check_prompts(cfg, prompts_BxP, prompt_lengths_B)
    target_lengths_B, max_target_len = check_targets(
        cfg, prompts_BxP.shape, target_lengths_B, max_target_len
    )
    return prompts_BxP, prompt_lengths_B, target_lengths_B, max_target_len


def _check_schedule(num_steps, strategy, temperature) -> None:
    """The denoising steps, the unmasking strategy and the temperature, checked on the host."""
    if not is_int(num_steps) or not 1 <= num_steps <= INT32_MAX:
        raise ValueError(f"num_steps must be an int in [1, {INT32_MAX}], got {num_steps!r}")
    if strategy not in DIFFUSION_STRATEGIES:
        raise ValueError(f"strategy must be one of {DIFFUSION_STRATEGIES}, got {strategy!r}")
    if not is_real(temperature) or not temperature >= 0:
        raise ValueError(
            f"temperature must be a finite number >= 0 (0: argmax), got {temperature!r}"
        )
