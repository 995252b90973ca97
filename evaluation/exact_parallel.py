"""The exact-parallel rows of the decoders table (evaluation/decoders.py): decoders that return
greedy AR's output in fewer sequential target passes (model/speculative.py). Each returns
model.ParallelOutput, whose target passes and drafted and accepted tokens the quality evaluator
reports beside its check that the output equals greedy AR's.
"""

from collections.abc import Callable

from data import vocab
from evaluation.decoders import (
    DecoderSpec,
    GenerateOutput,
    Models,
    Prompts,
    next_token_model,
    register,
)
from model import jacobi_generate, prompt_lookup_generate, speculative_generate


def _one_model(generate_fn, **kwargs) -> Callable[[Models, Prompts], GenerateOutput]:
    """A decoder of `generate_fn(model, prompts, prompt_lengths, ...)` with these settings."""

    def decode(models: Models, prompts: Prompts) -> GenerateOutput:
        return generate_fn(
            models.model,
            prompts.prompts_BxP,
            prompts.prompt_lengths_B,
            max_new_tokens=prompts.max_new_tokens,
            eos_id=prompts.eos_id,
            **kwargs,
        )

    return decode


def _speculative(num_draft_tokens: int, cmlm: bool) -> Callable[[Models, Prompts], GenerateOutput]:
    def decode(models: Models, prompts: Prompts) -> GenerateOutput:
        return speculative_generate(
            models.model,
            models.second,
            prompts.prompts_BxP,
            prompts.prompt_lengths_B,
            num_draft_tokens=num_draft_tokens,
            max_new_tokens=prompts.max_new_tokens,
            eos_id=prompts.eos_id,
            draft_mask_id=vocab.MASK if cmlm else None,
            target_lengths_B=prompts.target_lengths_B if cmlm else None,
        )

    return decode


register(
    DecoderSpec(
        name="Jacobi (block 4)",
        family="exact-parallel",
        description=(
            "Jacobi decoding: each pass feeds a block of 3 guesses after the committed text and "
            "keeps those that are fixed points of the model's greedy map, plus one token; the "
            "guesses are the previous pass's predictions. Greedy AR's output, in fewer passes."
        ),
        decode=_one_model(jacobi_generate, block_size=4),
        applies_to=next_token_model("causal", "prefix"),
        timing_mask="causal",
    )
)
register(
    DecoderSpec(
        name="prompt lookup (8)",
        family="exact-parallel",
        description=(
            "Speculative decoding without a draft model: the 8 tokens that followed the latest "
            "earlier occurrence of the row's last two tokens (in its prompt or its output) are "
            "verified in one pass; greedy AR's output, one pass per round."
        ),
        decode=_one_model(prompt_lookup_generate, num_draft_tokens=8),
        applies_to=next_token_model("causal", "prefix"),
        timing_mask="causal",
        # It pays off on repeats, which depend on what the model learned: scored where
        # eval.decoders names it, and timed on trained models by benchmarks.decoders.
        default=False,
    )
)
register(
    DecoderSpec(
        name="speculative (AR draft, 4)",
        family="exact-parallel",
        description=(
            "Speculative decoding: the experiment's small AR draft (`eval.speculative."
            "draft_variant`) proposes 4 tokens, one pass of the target verifies them; greedy "
            "AR's output, in fewer target passes."
        ),
        decode=_speculative(num_draft_tokens=4, cmlm=False),
        applies_to=next_token_model("causal", "prefix"),
        timing_mask=None,  # Two models: timed on the trained pair by benchmarks.decoders.
        needs="speculative.draft_variant",
    )
)
register(
    DecoderSpec(
        name="speculative (CMLM draft, 8)",
        family="exact-parallel",
        description=(
            "Speculative decoding with the experiment's CMLM model as the draft (`eval."
            "speculative.cmlm_variant`): one masked pass proposes the next 8 tokens (given the "
            "reference length, as mask-predict is) and the AR target verifies them."
        ),
        decode=_speculative(num_draft_tokens=8, cmlm=True),
        applies_to=next_token_model("causal", "prefix"),
        timing_mask=None,
        needs="speculative.cmlm_variant",
    )
)
