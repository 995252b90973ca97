"""The decoders table: every way this project turns a prompt into a continuation.

Quality scoring (evaluation/quality.py), speed timing (evaluation/speed.py) and the benchmarks all
read `DECODERS`, so a new decoder is one `register(DecoderSpec(...))` call: it then appears in the
report's quality, speed and verdict tables. A decoder is a function
`decode(models, prompts) -> GenerateOutput` (model/sampling.py's layout: prompt, continuation,
EOS, then padding; `lengths_B` counts the prompt and the continuation), plus what the tables need
to know about it: its family, the variants it is scored on, and the mask of the model it is timed
on. Shape legend: B rows, P prompt width.

Example: sampling at temperature 0.8 as a new decoder (add its name to `eval.speed.decoders` to
time it):

    from evaluation import decoders
    from model import generate

    def sample_t08(models, prompts):          # -> GenerateOutput(tokens_BxL, lengths_B)
        return generate(models.model, prompts.prompts_BxP, prompts.prompt_lengths_B,
                        max_new_tokens=prompts.max_new_tokens, eos_id=prompts.eos_id,
                        temperature=0.8)

    decoders.register(decoders.DecoderSpec(
        name="AR (cache, T=0.8)", family="AR", description="Sampling at temperature 0.8.",
        decode=sample_t08,
        applies_to=lambda mask_kind, objective: mask_kind == "causal",
        timing_mask="causal"))

A decoder that needs a second model (a draft, a baseline) sets `needs="speculative.draft_variant"`
(the key under `config.eval` naming that variant) and receives it as `models.second`.
"""

import dataclasses
from collections.abc import Callable

import numpy as np
from flax import nnx

from data import vocab
from model import (
    ARCHITECTURES,
    NAR_MASK_KINDS,
    Decoder,
    GenerateOutput,
    beam_search,
    generate,
    mask_predict,
)
from training.config import MASKED_OBJECTIVES

FAMILIES = ("AR", "non-AR", "exact-parallel")
Model = Decoder | tuple[nnx.GraphDef, nnx.State]


@dataclasses.dataclass(frozen=True)
class Prompts:
    """A batch of right-padded prompts and the room the decoder has after them."""

    prompts_BxP: np.ndarray
    prompt_lengths_B: np.ndarray
    # Each row's reference target length (EOS excluded): the oracle length that a non-AR decoder
    # without a length head is given. Timing passes max_new_tokens for every row.
    target_lengths_B: np.ndarray
    max_new_tokens: int  # Tokens a decoder may write after the widest prompt, EOS included.
    eos_id: int | None = vocab.EOS  # None: no EOS (timing runs every row to max_new_tokens).


@dataclasses.dataclass(frozen=True)
class Models:
    """The variant's own model, and the second model a decoder `needs` (a baseline, a draft)."""

    model: Model
    second: Model | None = None


@dataclasses.dataclass(frozen=True)
class DecoderSpec:
    """One row of the decoders table."""

    name: str
    family: str  # One of FAMILIES.
    description: str  # One sentence for the report's methods section (Markdown).
    # An exact-parallel decoder returns model.ParallelOutput (GenerateOutput's fields, then its
    # target passes, drafted and accepted tokens per row).
    decode: Callable[[Models, Prompts], GenerateOutput]
    # Whether the decoder is scored on a variant, from its (attention mask kind, objective).
    applies_to: Callable[[str, str], bool]
    # The mask of the random-weights model the decoder is timed on; None: not timed (it runs
    # the same program as another decoder).
    timing_mask: str | None
    # The key under config.eval that names the variant of the second model (same seed), e.g.
    # "nar.ar_variant"; None when the decoder needs one model.
    needs: str | None = None
    recomputes_prefix: bool = False  # O(L^2) per row: timed only up to no_cache_max_length.
    # Scored when `eval.decoders` is empty; False: only when `eval.decoders` names it (a decoder
    # whose cost is not worth paying in every experiment).
    default: bool = True
    # Scored only on models with a length head (ModelConfig.length_head); timed with one.
    needs_length_head: bool = False
    # The model architectures (ModelConfig.architecture) it is timed on.
    architectures: tuple[str, ...] = ARCHITECTURES
    # ModelConfig fields of the random-weights model it is timed on, beyond the mask.
    timing_config: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"Decoder {self.name!r}: family must be one of {FAMILIES}")


DECODERS: dict[str, DecoderSpec] = {}


def register(spec: DecoderSpec) -> DecoderSpec:
    """Adds a decoder to the table (a later spec of the same name replaces the earlier one)."""
    DECODERS[spec.name] = spec
    return spec


def lookup(names) -> list[DecoderSpec]:
    """The specs of `names`, in that order; a ValueError names any unknown one."""
    unknown = [name for name in names if name not in DECODERS]
    if unknown:
        raise ValueError(f"Unknown decoders {unknown}; the decoders table has {list(DECODERS)}.")
    return [DECODERS[name] for name in names]


def scored_on(mask_kind: str, objective: str, selection=()) -> list[DecoderSpec]:
    """The decoders scored on a variant, in table order: those `selection` names, or else every
    default one."""
    chosen = lookup(selection) if selection else [s for s in DECODERS.values() if s.default]
    return [spec for spec in chosen if spec.applies_to(mask_kind, objective)]


def _ar(use_cache: bool) -> Callable[[Models, Prompts], GenerateOutput]:
    def decode(models: Models, prompts: Prompts) -> GenerateOutput:
        return generate(
            models.model,
            prompts.prompts_BxP,
            prompts.prompt_lengths_B,
            max_new_tokens=prompts.max_new_tokens,
            eos_id=prompts.eos_id,
            use_cache=use_cache,
        )

    return decode


def _beam(beam_size: int, alpha: float) -> Callable[[Models, Prompts], GenerateOutput]:
    def decode(models: Models, prompts: Prompts) -> GenerateOutput:
        # Timing passes no EOS: every beam then runs to max_new_tokens.
        eos_id = -1 if prompts.eos_id is None else prompts.eos_id
        out = beam_search(
            models.model,
            prompts.prompts_BxP,
            prompts.prompt_lengths_B,
            beam_size=beam_size,
            max_new_tokens=prompts.max_new_tokens,
            eos_id=eos_id,
            length_penalty=alpha,
        )
        return GenerateOutput(out.tokens_BxKxL[:, 0], out.lengths_BxK[:, 0])

    return decode


def next_token_model(*mask_kinds: str) -> Callable[[str, str], bool]:
    """Scored on next-token (not CMLM) models with one of these mask kinds."""
    return lambda mask_kind, objective: (
        objective not in MASKED_OBJECTIVES and mask_kind in mask_kinds
    )


def predicted_length_spec(num_iterations: int, length_beam: int) -> DecoderSpec:
    """Mask-predict with K passes, the lengths from the model's length head (a length beam)."""

    def decode(models: Models, prompts: Prompts) -> GenerateOutput:
        return mask_predict(
            models.model,
            prompts.prompts_BxP,
            prompts.prompt_lengths_B,
            None,
            num_iterations=num_iterations,
            mask_id=vocab.MASK,
            eos_id=prompts.eos_id,
            max_target_len=prompts.max_new_tokens - (prompts.eos_id is not None),
            length_beam=length_beam,
        )

    return DecoderSpec(
        name=f"mask-predict K={num_iterations}, predicted length (beam {length_beam})",
        family="non-AR",
        description=(
            f"Mask-Predict with {num_iterations} pass(es), the target length predicted by the "
            f"model's length head: its {length_beam} likeliest length(s) decoded side by side, "
            "the best mean log-probability kept. Models with a length head only."
        ),
        decode=decode,
        applies_to=lambda mask_kind, objective: objective in MASKED_OBJECTIVES,
        timing_mask="prefix_full",
        needs_length_head=True,
    )


def mask_predict_spec(num_iterations: int) -> DecoderSpec:
    """Mask-predict with K passes (model/nar.py), given each row's reference target length."""

    def decode(models: Models, prompts: Prompts) -> GenerateOutput:
        # The EOS slot is appended after the target, never fed to the model.
        max_target_len = prompts.max_new_tokens - (prompts.eos_id is not None)
        return mask_predict(
            models.model,
            prompts.prompts_BxP,
            prompts.prompt_lengths_B,
            np.minimum(prompts.target_lengths_B, max_target_len),
            num_iterations=num_iterations,
            mask_id=vocab.MASK,
            eos_id=prompts.eos_id,
            max_target_len=max_target_len,
        )

    return DecoderSpec(
        name=f"mask-predict K={num_iterations}",
        family="non-AR",
        description=(
            f"Mask-Predict with {num_iterations} parallel pass(es) over `prompt MASK…MASK`, given "
            "each row's reference target length (oracle length); CMLM models only."
        ),
        decode=decode,
        applies_to=lambda mask_kind, objective: objective in MASKED_OBJECTIVES,
        timing_mask="prefix_full",
    )


register(
    DecoderSpec(
        name="AR (cache)",
        family="AR",
        description="Greedy AR decoding with the KV cache: exact for causal and prefix masks.",
        decode=_ar(use_cache=True),
        applies_to=next_token_model("causal", "prefix"),
        timing_mask="causal",
    )
)
register(
    DecoderSpec(
        name="AR (cache), cross-attention K/V every step",
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
        applies_to=lambda mask_kind, objective: False,  # Its tokens are AR (cache)'s.
        timing_mask="causal",
        default=False,
        architectures=("encoder_decoder",),
        timing_config={"cross_kv_cache": False},
    )
)
register(
    DecoderSpec(
        name="AR (no cache, honest)",
        family="AR",
        description=(
            "Greedy AR decoding that recomputes the whole prefix at every step under the model's "
            "own mask: the honest decoder of a full-mask model, and the reference for the cache."
        ),
        decode=_ar(use_cache=False),
        applies_to=next_token_model(*NAR_MASK_KINDS),
        timing_mask="full",
        recomputes_prefix=True,
    )
)
register(
    DecoderSpec(
        name="AR (cache, naive)",
        family="AR",
        description=(
            "Greedy AR decoding of a full-mask model with the KV cache, as code written for causal "
            "models would run it: cached keys never see later tokens, so it is a different "
            "function from the one trained."
        ),
        decode=_ar(use_cache=True),
        applies_to=next_token_model(*NAR_MASK_KINDS),
        timing_mask=None,  # The same program as "AR (cache)".
    )
)
register(
    DecoderSpec(
        name="beam search (4 beams)",
        family="AR",
        description=(
            "Beam search over the KV cache with 4 beams and length penalty ((5 + n) / 6)^0.6, "
            "stopping a row once no live beam can beat its worst finished one; the best beam is "
            "scored. Not in the default set: list it in `eval.decoders`."
        ),
        decode=_beam(beam_size=4, alpha=0.6),
        applies_to=next_token_model("causal", "prefix"),
        timing_mask="causal",
        default=False,
    )
)
for _K in (1, 2, 4, 8):
    register(mask_predict_spec(_K))
for _K, _beam in ((1, 1), (4, 1), (4, 3)):
    register(predicted_length_spec(_K, _beam))

# The exact-parallel family (speculative, Jacobi and prompt-lookup decoding) registers its rows
# from its own module; importing it here keeps DECODERS whole for every reader of this one.
from evaluation import exact_parallel  # noqa: E402, F401
