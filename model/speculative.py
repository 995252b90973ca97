"""Exact parallel decoding of an AR model: speculative decoding and Jacobi decoding.

Both compute the target model's own output with fewer sequential target passes. Each round a
draft proposes G tokens after each row's committed text, and the target scores all of them in one
pass of G + 1 tokens over its KV cache. Verification (model/verify.py) keeps the drafts the
target accepts and adds one token of its own, so the output is the target's own: token for token
when greedy, in distribution when sampling.

Rows accept different numbers of tokens. Every cache here keeps each token at the slot of its
position (a per-row slot index; model/attention.py `write_slots`): a row's rejected drafts are
undone by marking their slots EMPTY (`forget`), and the next round overwrites them.

The drafts (model/drafts.py): an AR decoder with its own KV cache, a CMLM model filling G masks
after the committed text in one pass, the target's own guesses from its previous pass (Jacobi
decoding), or the tokens that followed the row's last n-gram earlier in the row (prompt lookup).
Shape legend: B rows, G draft tokens, V vocab, W buffer width.
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from model import drafts, parallel_loop
from model.checks import check_cached_decoding, check_prompts, check_rng, check_token_id, is_int
from model.decoder import Decoder, split_model
from model.masks import kinds_where
from model.parallel_loop import ParallelOutput
from model.sampling import SamplingParams


def speculative_generate(
    target: Decoder | tuple[nnx.GraphDef, nnx.State],
    draft: Decoder | tuple[nnx.GraphDef, nnx.State],
    prompts_BxP,
    prompt_lengths_B=None,
    *,
    num_draft_tokens: int,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_k: int = 0,
    top_p: float = 1.0,
    eos_id: int | None = None,
    rng: jax.Array | None = None,
    pad_id: int = 0,
    draft_mask_id: int | None = None,
    target_lengths_B=None,
) -> ParallelOutput:
    """Speculative decoding: `generate(target, ...)`'s output, with fewer target passes.

    Args:
      target: the AR model whose output this is (causal or prefix mask: its cache is exact).
      draft: an AR decoder (causal or prefix mask) with the target's vocabulary, or, with
        `draft_mask_id`, a CMLM model (model/nar.py) that fills masks after the committed text.
      num_draft_tokens: G, the tokens drafted per round (one target pass verifies them all).
      draft_mask_id: the MASK id the CMLM draft was trained with; None: `draft` is AR.
      target_lengths_B: each row's target length (>= 0) for the CMLM draft (default:
        max_new_tokens).
      Everything else as `generate`; the sampling parameters are traced (no recompiles).
    Returns:
      ParallelOutput: generate's tokens and lengths, then per row the target passes, draft
      tokens proposed and draft tokens kept.
    """
    graphdef, state, cfg = split_model(target)
    draft_graphdef, draft_state, draft_cfg = split_model(draft)
    check_cached_decoding(cfg, "target")
    if draft_cfg.vocab_size != cfg.vocab_size:
        raise ValueError(
            f"The draft's vocabulary ({draft_cfg.vocab_size}) differs from the target's "
            f"({cfg.vocab_size}): its tokens would mean different things"
        )
    G = _check_num_draft_tokens(cfg, num_draft_tokens, "num_draft_tokens")
    prompts_BxP, prompt_lengths_B, eos_id, pad_id = _check_common(
        cfg, prompts_BxP, prompt_lengths_B, max_new_tokens, eos_id, pad_id
    )
    drafter = _drafter(cfg, draft_cfg, draft_graphdef, G, draft_mask_id, pad_id)
    target_lengths_B = _check_target_lengths(target_lengths_B, len(prompts_BxP), max_new_tokens)
    return _run(
        graphdef, state, drafter, draft_state, prompts_BxP, prompt_lengths_B, target_lengths_B,
        SamplingParams.checked(temperature, top_k, top_p), check_rng(rng),
        max_new_tokens=max_new_tokens, eos_id=eos_id, pad_id=pad_id,
    )  # fmt: skip


def _drafter(cfg, draft_cfg, draft_graphdef, G: int, draft_mask_id, pad_id: int):
    """The draft of `speculative_generate`: an AR draft, or with `draft_mask_id` a CMLM one."""
    if draft_mask_id is None:
        check_cached_decoding(draft_cfg, "draft")
        return drafts.ARDraft(draft_graphdef, G)
    if draft_cfg.mask.target_view != "all":
        raise ValueError(
            f"A CMLM draft (draft_mask_id given) needs a mask whose targets see each other "
            f"({kinds_where(lambda k: k.target_view == 'all')}); the draft's is "
            f"{draft_cfg.attention_mask_kind!r}"
        )
    mask_id = check_token_id(draft_mask_id, "draft_mask_id", cfg.vocab_size)
    return drafts.CMLMDraft(draft_graphdef, G, mask_id, pad_id)


def _check_target_lengths(target_lengths_B, B: int, max_new_tokens: int) -> jax.Array:
    """The CMLM draft's target lengths as int32 (None: max_new_tokens for every row)."""
    if target_lengths_B is None:
        target_lengths_B = np.full((B,), max_new_tokens)
    target_lengths_B = np.asarray(target_lengths_B)
    if (
        target_lengths_B.shape != (B,)
        or not np.issubdtype(target_lengths_B.dtype, np.integer)
        or target_lengths_B.min() < 0
    ):
        raise ValueError(f"target_lengths must be {B} ints >= 0, got {target_lengths_B.tolist()}")
    return jnp.asarray(target_lengths_B, jnp.int32)


def jacobi_generate(
    model: Decoder | tuple[nnx.GraphDef, nnx.State],
    prompts_BxP,
    prompt_lengths_B=None,
    *,
    block_size: int,
    max_new_tokens: int,
    eos_id: int | None = None,
    pad_id: int = 0,
) -> ParallelOutput:
    """Jacobi decoding: greedy `generate`'s output, iterating a block of `block_size` guesses.

    Each pass feeds the last committed token and block_size - 1 guesses; every guess that equals
    the model's greedy prediction from the guesses before it is a fixed point and is kept, with
    one more token of the model's own, and the pass's other predictions are the next guesses.
    So a pass keeps at least one token: target passes per token never exceed 1.
    """
    graphdef, state, cfg = split_model(model)
    check_cached_decoding(cfg, "model")
    if is_int(block_size) and block_size == 1:
        raise ValueError("block_size must be >= 2 (1 is plain greedy decoding: use generate)")
    G = _check_num_draft_tokens(cfg, block_size, "block_size", extra=1)
    prompts_BxP, prompt_lengths_B, eos_id, pad_id = _check_common(
        cfg, prompts_BxP, prompt_lengths_B, max_new_tokens, eos_id, pad_id
    )
    return _run(
        graphdef, state, drafts.JacobiDraft(G, cfg.vocab_size, pad_id), None, prompts_BxP,
        prompt_lengths_B, None, SamplingParams.checked(0.0, 0, 1.0), jax.random.key(0),
        max_new_tokens=max_new_tokens, eos_id=eos_id, pad_id=pad_id,
    )  # fmt: skip


def prompt_lookup_generate(
    model: Decoder | tuple[nnx.GraphDef, nnx.State],
    prompts_BxP,
    prompt_lengths_B=None,
    *,
    num_draft_tokens: int,
    max_new_tokens: int,
    ngram_size: int = 2,
    temperature: float = 0.0,
    top_k: int = 0,
    top_p: float = 1.0,
    eos_id: int | None = None,
    rng: jax.Array | None = None,
    pad_id: int = 0,
) -> ParallelOutput:
    """Speculative decoding with no draft model: `generate(model, ...)`'s output.

    Each round drafts the `num_draft_tokens` tokens that followed the latest earlier occurrence
    of the row's last `ngram_size` tokens (model/drafts.py `NgramDraft`), and one pass verifies
    them. Repeats (names copied from a prompt, a phrase the model says again) cost one pass for
    several tokens; elsewhere a round keeps one token, as a decode step does.
    """
    graphdef, state, cfg = split_model(model)
    check_cached_decoding(cfg, "model")
    G = _check_num_draft_tokens(cfg, num_draft_tokens, "num_draft_tokens")
    prompts_BxP, prompt_lengths_B, eos_id, pad_id = _check_common(
        cfg, prompts_BxP, prompt_lengths_B, max_new_tokens, eos_id, pad_id
    )
    # An n-gram with a committed token after it must fit in a row's P + max_new_tokens tokens.
    longest = prompts_BxP.shape[1] + max_new_tokens - 1
    if not is_int(ngram_size) or not 1 <= ngram_size <= longest:
        raise ValueError(
            f"ngram_size must be an int in [1, {longest}] (an n-gram and the token after it fit "
            f"in prompts padded to {prompts_BxP.shape[1]} plus max_new_tokens={max_new_tokens}), "
            f"got {ngram_size!r}"
        )
    return _run(
        graphdef, state, drafts.NgramDraft(G, cfg.vocab_size, int(ngram_size)), None,
        prompts_BxP, prompt_lengths_B, None, SamplingParams.checked(temperature, top_k, top_p),
        check_rng(rng), max_new_tokens=max_new_tokens, eos_id=eos_id, pad_id=pad_id,
    )  # fmt: skip


def _check_common(cfg, prompts_BxP, prompt_lengths_B, max_new_tokens, eos_id, pad_id):
    """The host checks every decoder here shares: (prompts, prompt lengths, eos_id, pad_id)."""
    prompts_BxP, prompt_lengths_B = check_prompts(cfg, prompts_BxP, prompt_lengths_B)
    P = prompts_BxP.shape[1]
    _check_positive(max_new_tokens, "max_new_tokens")
    if P + max_new_tokens > cfg.max_len + 1:
        raise ValueError(
            f"max_new_tokens={max_new_tokens} does not fit: prompts are padded to {P} tokens and "
            f"max_len is {cfg.max_len}, so at most {cfg.max_len + 1 - P} new tokens"
        )
    eos_id = check_token_id(eos_id, "eos_id", cfg.vocab_size, optional=True)
    pad_id = check_token_id(pad_id, "pad_id", cfg.vocab_size)
    return prompts_BxP, prompt_lengths_B, eos_id, pad_id


def _run(
    graphdef, state, drafter, draft_state, prompts_BxP, prompt_lengths_B, target_lengths_B,
    sampling, rng, *, max_new_tokens, eos_id, pad_id,
) -> ParallelOutput:  # fmt: skip
    """The decode loop (model/parallel_loop.py) on host-checked arguments (`_check_common`)."""
    if target_lengths_B is None:  # Only a CMLM draft reads them.
        target_lengths_B = jnp.full((prompts_BxP.shape[0],), max_new_tokens, jnp.int32)
    return parallel_loop.run_rounds(
        graphdef, state, drafter, draft_state, prompts_BxP, prompt_lengths_B, target_lengths_B,
        rng, sampling, jnp.int32(-1 if eos_id is None else eos_id),
        num_draft_tokens=drafter.num_tokens, max_new_tokens=int(max_new_tokens), pad_id=pad_id,
    )  # fmt: skip


def _check_num_draft_tokens(cfg, value, name: str, extra: int = 0) -> int:
    """G = value - extra, the drafts per round (Jacobi's block_size also counts the committed
    token it feeds: extra 1). A row holds at most max_len + 1 tokens and at least 2 (a prompt
    token, the first new one) precede any draft, so more than max_len - 1 are never kept."""
    low, high = 1 + extra, cfg.max_len - 1 + extra
    if not is_int(value) or not low <= value <= high:
        raise ValueError(
            f"{name} must be an int in [{low}, {high}] (a row holds at most max_len + 1 = "
            f"{cfg.max_len + 1} tokens, 2 of them before any draft), got {value!r}"
        )
    return int(value) - extra


def _check_positive(value, name: str) -> int:
    if not is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)
