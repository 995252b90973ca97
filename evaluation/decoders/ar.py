"""The AR rows of the decoders table: one token per sequential pass (model/sampling.py,
model/beam.py)."""

from collections.abc import Callable

import jax

from evaluation.decoders.diffusion import SAMPLE_QUALITY
from evaluation.decoders.table import (
    DecoderSpec,
    Models,
    Params,
    Prompts,
    next_token_model,
    register,
)
from model import GenerateOutput, beam_search, generate


def greedy(models: Models, prompts: Prompts, use_cache: bool = True) -> GenerateOutput:
    """Greedy AR decoding of `models.model`: the reference exact-parallel decoders must equal."""
    return generate(
        models.model,
        prompts.prompts_BxP,
        prompts.prompt_lengths_B,
        max_new_tokens=prompts.max_new_tokens,
        eos_id=prompts.eos_id,
        use_cache=use_cache,
    )


def _ar(use_cache: bool) -> Callable[[Models, Prompts], GenerateOutput]:
    return lambda models, prompts: greedy(models, prompts, use_cache=use_cache)


def _sampled(models: Models, prompts: Prompts) -> GenerateOutput:
    return generate(
        models.model,
        prompts.prompts_BxP,
        prompts.prompt_lengths_B,
        max_new_tokens=prompts.max_new_tokens,
        eos_id=prompts.eos_id,
        temperature=1.0,
        rng=jax.random.key(prompts.seed),
    )


def _beam(beam_size: int, alpha: float) -> Callable[[Models, Prompts], GenerateOutput]:
    def decode(models: Models, prompts: Prompts) -> GenerateOutput:
        out = beam_search(  # Timing passes no EOS: every beam then runs to max_new_tokens.
            models.model,
            prompts.prompts_BxP,
            prompts.prompt_lengths_B,
            beam_size=beam_size,
            max_new_tokens=prompts.max_new_tokens,
            eos_id=prompts.eos_id,
            length_penalty=alpha,
        )
        return GenerateOutput(out.tokens_BxKxL[:, 0], out.lengths_BxK[:, 0])

    return decode


AR_CACHE = register(
    DecoderSpec(
        id="ar_cache",
        label="AR (cache)",
        family="AR",
        description="Greedy AR decoding with the KV cache: exact for causal and prefix masks.",
        decode=_ar(use_cache=True),
        applies_to=next_token_model(),
        timing_mask="causal",
    )
)
register(
    DecoderSpec(
        id="ar_cache_no_cross_kv",
        label="AR (cache), cross-attention K/V every step",
        family="AR",
        description=(
            "`AR (cache)` on an encoder-decoder whose decode steps project the cross-attention "
            "keys and values of the encoder output again (`cross_kv_cache=False`), instead of "
            "reading the ones the prefill cached: the same tokens, timed to show what that "
            "cache saves. An optimization barrier keeps XLA from hoisting the loop-invariant "
            "projection out of the decode loop, which would cache it anyway. Timed only "
            "(`eval.speed.decoders`)."
        ),
        decode=_ar(use_cache=True),
        applies_to=lambda mask, objective: False,  # Its tokens are AR (cache)'s.
        timing_mask="causal",
        default=False,
        architectures=("encoder_decoder",),
        timing_config={"cross_kv_cache": False},
    )
)
AR_NO_CACHE = register(
    DecoderSpec(
        id="ar_no_cache",
        label="AR (no cache, honest)",
        family="AR",
        description=(
            "Greedy AR decoding that recomputes the whole prefix at every step under the model's "
            "own mask: the honest decoder of a full-mask model, and the reference for the cache."
        ),
        decode=_ar(use_cache=False),
        applies_to=next_token_model(exact_cache=False),
        timing_mask="full",
        recomputes_prefix=True,
    )
)
register(
    DecoderSpec(
        id="ar_cache_naive",
        label="AR (cache, naive)",
        family="AR",
        description=(
            "Greedy AR decoding of a full-mask model with the KV cache, as code written for causal "
            "models would run it: cached keys never see later tokens, so it is a different "
            "function from the one trained."
        ),
        decode=_ar(use_cache=True),
        applies_to=next_token_model(exact_cache=False),
        timing_mask=None,  # The same program as "AR (cache)".
    )
)
register(
    DecoderSpec(
        id="beam4",
        label="beam search (4 beams)",
        family="AR",
        description=(
            "Beam search over the KV cache with 4 beams and length penalty ((5 + n) / 6)^0.6, "
            "stopping a row once no live beam can beat its worst finished one; the best beam is "
            "scored. Not in the default set: list it in `eval.decoders`."
        ),
        decode=_beam(beam_size=4, alpha=0.6),
        applies_to=next_token_model(),
        timing_mask="causal",
        default=False,
        params=Params(beams=4),
    )
)
register(
    DecoderSpec(
        id="ar_sample",
        label="AR (cache, sampled)",
        family="AR",
        description=(
            "AR sampling at temperature 1 with the KV cache (no top-k or top-p): the model's own "
            "distribution, set against the diffusion decoders' samples by the same statistics "
            "(generative NLL, sample entropy), on plain text too. Not in the default set: list "
            "it in `eval.decoders`."
        ),
        decode=_sampled,
        applies_to=next_token_model(),
        timing_mask="causal",
        default=False,
        **SAMPLE_QUALITY,
    )
)
