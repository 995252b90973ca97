"""The block loop of masked-diffusion sampling (model/diffusion_sampling.py): every row's
targets sampled block by block, each block denoised in T steps (model/denoise.py), with a KV
cache of the prompt and the finished blocks where it is exact, the encoder's one pass of an
encoder-decoder, or the whole row at every step (the reference); and, where a block model
finds its own length, each row ended at the first EOS it writes (BD3-LM).
Shape legend: B rows, P prompt width, N target width (whole blocks), K block size, V vocab.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from model.cache import init_cache
from model.denoise import denoise_loop
from model.sampling import prompt_buffer


def _block_columns(prompt_lengths_B: jax.Array, start: jax.Array, K: int) -> jax.Array:
    """[B, K]: the positions of target tokens start .. start + K - 1 in each row."""
    return prompt_lengths_B[:, None] + start + jnp.arange(K, dtype=jnp.int32)[None, :]


def _uncached_logits_fn(model, prompts_BxP, prompt_lengths_B, W, pad_id):
    """`make(targets_BxN, start, K, target_lengths_B)`: a logits_fn of the block of K target
    tokens from `start` that runs the whole row [prompt, targets before the block, the block]
    at each step."""
    B = prompts_BxP.shape[0]
    row_BxW = prompt_buffer(prompts_BxP, prompt_lengths_B, W, pad_id)
    rows_Bx1 = jnp.arange(B)[:, None]

    def make(targets_BxN, start, K, target_lengths_B):
        cols_BxK = _block_columns(prompt_lengths_B, start, K)
        ends_B = prompt_lengths_B + jnp.minimum(start + K, target_lengths_B)
        N = targets_BxN.shape[1]
        n_1xN = jnp.arange(N)[None, :]
        # Target token n of row b sits at column prompt_length + n; padding is dropped.
        real_BxN = n_1xN < target_lengths_B[:, None]
        target_cols_BxN = jnp.where(real_BxN, prompt_lengths_B[:, None] + n_1xN, W)

        def logits_fn(block_BxK):
            targets = jax.lax.dynamic_update_slice(targets_BxN, block_BxK, (0, start))
            tokens_BxW = row_BxW.at[rows_Bx1, target_cols_BxN].set(targets, mode="drop")
            logits_BxWxV, _ = model(tokens_BxW, lengths_B=ends_B, prefix_lengths_B=prompt_lengths_B)
            at_BxK = jnp.minimum(cols_BxK, W - 1)
            return jnp.take_along_axis(logits_BxWxV, at_BxK[..., None], axis=1)

        return logits_fn

    return make


class Sampled(NamedTuple):
    """What `sample_targets` returns."""

    targets_BxN: jax.Array  # pad_id beyond each row's length.
    lengths_B: jax.Array  # Each row's target length (where it wrote EOS, if it ends at one).
    ended_B: jax.Array  # Whether it wrote EOS (every row, unless it ends at one).
    calls_per_block: jax.Array  # Model calls per block of the blocks sampled.


def sample_targets(
    model, prompts_BxP, prompt_lengths_B, target_lengths_B, rng, num_steps, sampling, memory, *,
    max_target_len, strategy, mask_id, pad_id, use_cache, eos_id=None,
) -> Sampled:  # fmt: skip
    """Every row's target tokens [B, N] (N: max_target_len rounded up to whole blocks; pad_id
    beyond each row's length), sampled block by block; and the denoising calls per block. An
    encoder-decoder's `memory` (its encoder's one pass) makes one block of every target, each
    step the decoder alone over the target slots. Given `eos_id` (a block model's own length),
    a row ends at the first EOS it writes, and sampling stops once every row has ended."""
    cfg = model.cfg
    B, P = prompts_BxP.shape
    K = min(cfg.mask.block_size(cfg) or max_target_len, max_target_len)
    num_blocks = -(-max_target_len // K)
    N = num_blocks * K
    valid_BxN = jnp.arange(N)[None, :] < target_lengths_B[:, None]
    targets_BxN = jnp.where(valid_BxN, mask_id, pad_id).astype(jnp.int32)
    call = functools.partial(model, prefix_lengths_B=prompt_lengths_B)
    cache, logits_fn_of = _block_logits(
        model, prompts_BxP, prompt_lengths_B, target_lengths_B, memory, use_cache,
        N=N, max_target_len=max_target_len, pad_id=pad_id,
    )  # fmt: skip

    def block(carry):
        j, targets_BxN, cache, calls, target_lengths_B, ended_B = carry
        start = j * K
        block_BxK = jax.lax.dynamic_slice_in_dim(targets_BxN, start, K, axis=1)
        lengths_B = jnp.clip(target_lengths_B - start, 0, K)
        # Padding positions past max_len would embed as NaN; they are never seen as keys.
        positions_BxK = jnp.minimum(_block_columns(prompt_lengths_B, start, K), cfg.max_len - 1)
        feed = functools.partial(call, positions_BxT=positions_BxK, lengths_B=lengths_B)
        logits_fn = logits_fn_of(targets_BxN, cache, start, K, target_lengths_B, feed)
        target_BxK = jnp.arange(K)[None, :] < lengths_B[:, None]
        block_BxK, block_calls = denoise_loop(
            logits_fn, block_BxK, target_BxK, jax.random.fold_in(rng, j), num_steps,
            sampling.temperature, mask_id=mask_id, strategy=strategy, top_k=sampling.top_k,
            top_p=sampling.top_p,
        )  # fmt: skip
        if eos_id is not None:
            block_BxK, target_lengths_B, ended_B = _end_at_eos(
                block_BxK, target_BxK, start, target_lengths_B, ended_B, eos_id, pad_id
            )
            lengths_B = jnp.clip(target_lengths_B - start, 0, K)
            feed = functools.partial(call, positions_BxT=positions_BxK, lengths_B=lengths_B)
        targets_BxN = jax.lax.dynamic_update_slice_in_dim(targets_BxN, block_BxK, start, axis=1)
        if cache is not None:  # The finished block's keys and values, for the blocks after it.
            cache = jax.lax.cond(
                j < num_blocks - 1, lambda c: feed(block_BxK, cache=c)[1], lambda c: c, cache
            )
        return j + 1, targets_BxN, cache, calls + block_calls, target_lengths_B, ended_B

    def more(carry):
        j, ended_B = carry[0], carry[-1]
        return (j < num_blocks) & ~jnp.all(ended_B)

    ended_B = jnp.zeros((B,), bool)
    carry = (jnp.int32(0), targets_BxN, cache, jnp.int32(0), target_lengths_B, ended_B)
    blocks, targets_BxN, _, calls, target_lengths_B, ended_B = jax.lax.while_loop(
        more, block, carry
    )
    if eos_id is None:
        ended_B = jnp.ones((B,), bool)  # Each gets the EOS the caller appends (if any).
    return Sampled(targets_BxN, target_lengths_B, ended_B, calls / jnp.maximum(blocks, 1))


def _block_logits(
    model, prompts_BxP, prompt_lengths_B, target_lengths_B, memory, use_cache, *, N,
    max_target_len, pad_id,
):  # fmt: skip
    """(the cache holding the prompt, or None; `logits_fn_of(targets_BxN, cache, start, K,
    target_lengths_B, feed)`, the logits_fn of the block of K target tokens from `start`):
    the decoder alone over the target slots, given an encoder-decoder's `memory` (one block);
    the block fed at the cache's index (`feed`: the model at the block's positions), its cache
    dropped; or the whole row at each step."""
    B, P = prompts_BxP.shape
    if memory is not None:  # No mask of an encoder-decoder has blocks: K = N, one block.
        memory_logits_fn = model.target_logits_fn(
            memory, prompts_BxP, prompt_lengths_B, target_lengths_B, N
        )
        return None, lambda *_: memory_logits_fn
    if use_cache:
        cache = init_cache(model.cfg, B, P + N)
        _, cache = model(
            prompts_BxP, lengths_B=prompt_lengths_B, prefix_lengths_B=prompt_lengths_B, cache=cache
        )

        def cached(targets_BxN, cache, start, K, target_lengths_B, feed):
            return lambda block_BxK: feed(block_BxK, cache=cache)[0]

        return cache, cached
    make = _uncached_logits_fn(model, prompts_BxP, prompt_lengths_B, P + max_target_len, pad_id)

    def uncached(targets_BxN, cache, start, K, target_lengths_B, feed):
        return make(targets_BxN, start, K, target_lengths_B)

    return None, uncached


def _end_at_eos(block_BxK, target_BxK, start, target_lengths_B, ended_B, eos_id, pad_id):
    """A row that wrote EOS in this block ends there: (the block, its EOS and what follows it
    as pad_id; each row's target length, cut at that EOS; whether each row has ended)."""
    K = block_BxK.shape[1]
    eos_BxK = (block_BxK == eos_id) & target_BxK & ~ended_B[:, None]
    wrote_B = jnp.any(eos_BxK, axis=1)
    first_B = jnp.argmax(eos_BxK, axis=1)
    target_lengths_B = jnp.where(wrote_B, start + first_B, target_lengths_B)
    cut_BxK = wrote_B[:, None] & (jnp.arange(K)[None, :] >= first_B[:, None])
    return jnp.where(cut_BxK, pad_id, block_BxK), target_lengths_B, ended_B | wrote_B
