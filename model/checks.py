"""Host-side checks of the arguments every decoder shares: a bad value fails with one sentence
naming the argument, before anything is traced (tests/test_bad_input_api.py)."""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from model.masks import kinds_where


def is_int(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def is_real(value) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and bool(np.isfinite(value))


def check_token_id(value, name: str, vocab_size: int, *, optional: bool = False) -> int | None:
    """A token id in [0, vocab_size) as a Python int (None too where `optional`), checked on the
    host: an id outside the vocabulary would be written into the output, or never match."""
    if optional and value is None:
        return None
    if not is_int(value) or not 0 <= value < vocab_size:
        allowed = " or None" if optional else ""
        raise ValueError(f"{name} must be a token id in [0, {vocab_size}){allowed}, got {value!r}")
    return int(value)


def check_fill_ids(cfg, mask_id, pad_id, eos_id) -> tuple[int, int, int | None]:
    """A parallel decoder's mask_id, pad_id and eos_id (None: no EOS), each checked by
    `check_token_id` against `cfg`'s vocabulary; mask_id == pad_id is refused, as padding would
    read as a MASK still to fill."""
    mask_id = check_token_id(mask_id, "mask_id", cfg.vocab_size)
    pad_id = check_token_id(pad_id, "pad_id", cfg.vocab_size)
    if mask_id == pad_id:
        raise ValueError(
            f"mask_id and pad_id are both {mask_id}: padding would read as a MASK still to fill"
        )
    return mask_id, pad_id, check_token_id(eos_id, "eos_id", cfg.vocab_size, optional=True)


def check_prompt_cache(
    cfg, use_cache, decoder: str, kinds: Callable, each: str, *, encodes_prompt: bool = False
) -> bool:
    """Whether a parallel decoder computes the prompt's state once: None means wherever that is
    exact, i.e. the prompt never sees the targets (`MaskKind.caches_prompt`, or an architecture
    whose encoder reads the prompt, `encodes_prompt`). True is refused anywhere else, naming
    the kinds `kinds` picks, as the prompt's keys would change each `each` ("pass", "step")."""
    exact = cfg.mask.caches_prompt or encodes_prompt
    if use_cache is None:
        return exact
    if use_cache and not exact:
        raise ValueError(
            f"{decoder}(use_cache=True) needs a model whose prompt never sees the targets "
            f"({kinds_where(kinds)}): under {cfg.attention_mask_kind!r} the prompt sees the "
            f"targets, so its keys change each {each}"
        )
    return bool(use_cache)


def check_cached_decoding(cfg, role: str) -> None:
    """Refuses a model whose KV cache is not exact (a target sees later tokens): every decoder
    that reuses cached keys (beam search, speculative, Jacobi, prompt lookup) asks this."""
    if not cfg.mask.exact_cache:
        exact = " or ".join(kinds_where(lambda kind: kind.exact_cache))
        raise ValueError(
            f"The {role} must be an AR model ({exact} mask), whose KV cache is exact; "
            f"its attention_mask_kind is {cfg.attention_mask_kind!r}"
        )


def check_rng(rng) -> jax.Array:
    """A JAX PRNG key (new-style `jax.random.key` or legacy uint32[2]); None gives key(0)."""
    if rng is None:
        return jax.random.key(0)
    dtype = getattr(rng, "dtype", None)
    typed = dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)
    legacy = dtype == np.uint32 and getattr(rng, "shape", None) == (2,)
    if not (typed and rng.shape == () or legacy):
        raise ValueError(f"rng must be one key from jax.random.key(seed), got {rng!r}")
    return rng


def check_prompts(cfg, prompts_BxP, prompt_lengths_B=None) -> tuple[jax.Array, jax.Array]:
    """Right-padded prompts and their lengths, validated on the host (every decoder's input).

    Returns them as int32 device arrays; prompt_lengths_B defaults to P for every row.
    """
    prompts_BxP = np.asarray(prompts_BxP)
    if prompts_BxP.ndim != 2 or not np.issubdtype(prompts_BxP.dtype, np.integer):
        raise ValueError(
            f"prompts must be a 2-D int array [batch, len], got "
            f"{prompts_BxP.dtype}{list(prompts_BxP.shape)}"
        )
    B, P = prompts_BxP.shape
    if B == 0 or P == 0:
        raise ValueError(f"prompts must hold at least one row and one token, got shape {[B, P]}")
    lengths_B = np.full((B,), P) if prompt_lengths_B is None else np.asarray(prompt_lengths_B)
    if not np.issubdtype(lengths_B.dtype, np.integer):
        raise ValueError(f"prompt_lengths must be ints, got {lengths_B.tolist()}")
    if lengths_B.shape != (B,) or lengths_B.min() < 1 or lengths_B.max() > P:
        raise ValueError(f"prompt_lengths must be {B} ints in [1, {P}], got {lengths_B.tolist()}")
    if P > cfg.max_len:
        raise ValueError(f"Prompts have {P} tokens but the model's max_len is {cfg.max_len}")
    ids = prompts_BxP[np.arange(P) < lengths_B[:, None]]
    if ids.size and (ids.min() < 0 or ids.max() >= cfg.vocab_size):
        raise ValueError(
            f"Prompt token ids must be in [0, {cfg.vocab_size}), "
            f"got values in [{ids.min()}, {ids.max()}]"
        )
    return jnp.asarray(prompts_BxP, jnp.int32), jnp.asarray(lengths_B, jnp.int32)


def check_targets(cfg, prompts_shape, target_lengths_B, max_target_len):
    """A parallel decoder's target lengths (ints >= 1) as int32, and the static target width
    (None: the longest), checked on the host against the prompts' [B, P] and max_len."""
    B, P = prompts_shape
    lengths_B = np.asarray(target_lengths_B)
    if not np.issubdtype(lengths_B.dtype, np.integer):
        raise ValueError(f"target_lengths must be ints, got {lengths_B.tolist()}")
    if lengths_B.shape != (B,) or lengths_B.min() < 1:
        raise ValueError(f"target_lengths must be {B} ints >= 1, got {lengths_B.tolist()}")
    longest = int(lengths_B.max())
    max_target_len = longest if max_target_len is None else max_target_len
    if not is_int(max_target_len) or max_target_len < longest:
        raise ValueError(
            f"max_target_len must be an int >= the longest target length {longest}, "
            f"got {max_target_len!r}"
        )
    if P + max_target_len > cfg.max_len:
        raise ValueError(
            f"Prompts padded to {P} tokens plus {max_target_len} target tokens do not fit the "
            f"model's max_len={cfg.max_len}"
        )
    return jnp.asarray(lengths_B, jnp.int32), int(max_target_len)
