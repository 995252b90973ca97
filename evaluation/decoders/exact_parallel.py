"""The exact-parallel rows of the decoders table: decoders that return greedy AR's output in fewer
sequential target passes (model/speculative.py). Each returns model.ParallelOutput; its
statistics (`equals_greedy`: the same tokens as greedy AR, row by row; target passes per token;
the share of drafted tokens accepted) are the spec's own metrics, with their verdict.
"""

from collections.abc import Callable

import numpy as np

from data import vocab
from evaluation.decoders.ar import greedy
from evaluation.decoders.table import (
    DecoderSpec,
    GenerateOutput,
    Models,
    Params,
    Prompts,
    Scalars,
    next_token_model,
    register,
)
from evaluation.report.schema import QUALITY, MetricSpec
from evaluation.stats import mean_sem, ratio_mean_sem
from model import jacobi_generate, prompt_lookup_generate, speculative_generate

METRICS = (
    MetricSpec(
        "equals_greedy",
        "equals greedy",
        "percent",
        QUALITY,
        per_decoder=True,
        verdicts=({"rule": "exact_parallel", "priority": 3},),
    ),
    MetricSpec("target_passes_per_token", "target passes per token", "number", QUALITY, True),
    MetricSpec("acceptance", "acceptance", "percent", QUALITY, per_decoder=True),
)


def statistics(out, generated: list[np.ndarray], models: Models, prompts: Prompts) -> dict:
    """Per row: whether it equals greedy AR's tokens, and the decoder's work."""
    reference = greedy(models, prompts)
    tokens_BxL, lengths_B = np.asarray(reference.tokens_BxL), np.asarray(reference.lengths_B)
    start_B = prompts.prompt_lengths_B
    same = [
        float(np.array_equal(g, tokens_BxL[b, start_B[b] : lengths_B[b]]))
        for b, g in enumerate(generated)
    ]
    return {
        "equals_greedy": np.array(same),
        "generated": np.array([len(g) for g in generated], np.float64),
        "target_passes": np.asarray(out.target_passes_B, np.float64),
        "drafted": np.asarray(out.drafted_B, np.float64),
        "accepted": np.asarray(out.accepted_B, np.float64),
    }


def summarize(rows: dict[str, np.ndarray]) -> Scalars:
    """The metrics of METRICS from every row's statistics (acceptance only when it drafted)."""
    scalars = {
        "equals_greedy": mean_sem(rows["equals_greedy"]),
        "target_passes_per_token": ratio_mean_sem(rows["target_passes"], rows["generated"]),
    }
    if rows["drafted"].sum() > 0:
        scalars["acceptance"] = ratio_mean_sem(rows["accepted"], rows["drafted"])
    return scalars


EXACT_PARALLEL = dict(
    family="exact-parallel", statistics=statistics, summarize=summarize, metrics=METRICS
)


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
        id="jacobi4",
        label="Jacobi (block 4)",
        **EXACT_PARALLEL,
        description=(
            "Jacobi decoding: each pass feeds a block of 3 guesses after the committed text and "
            "keeps those that are fixed points of the model's greedy map, plus one token; the "
            "guesses are the previous pass's predictions. Greedy AR's output, in fewer passes."
        ),
        decode=_one_model(jacobi_generate, block_size=4),
        applies_to=next_token_model(),
        timing_mask="causal",
        params=Params(draft="jacobi", draft_tokens=4),
    )
)
register(
    DecoderSpec(
        id="prompt_lookup8",
        label="prompt lookup (8)",
        **EXACT_PARALLEL,
        description=(
            "Speculative decoding without a draft model: the 8 tokens that followed the latest "
            "earlier occurrence of the row's last two tokens (in its prompt or its output) are "
            "verified in one pass; greedy AR's output, one pass per round."
        ),
        decode=_one_model(prompt_lookup_generate, num_draft_tokens=8),
        applies_to=next_token_model(),
        timing_mask="causal",
        params=Params(draft="prompt_lookup", draft_tokens=8),
        # It pays off on repeats, which depend on what the model learned: scored where
        # eval.decoders names it, and timed on trained models by benchmarks.decoders.
        default=False,
    )
)
register(
    DecoderSpec(
        id="speculative_ar4",
        label="speculative (AR draft, 4)",
        **EXACT_PARALLEL,
        description=(
            "Speculative decoding: the experiment's small AR draft (`eval.speculative."
            "draft_variant`) proposes 4 tokens, one pass of the target verifies them; greedy "
            "AR's output, in fewer target passes."
        ),
        decode=_speculative(num_draft_tokens=4, cmlm=False),
        applies_to=next_token_model(),
        timing_mask=None,  # Two models: timed on the trained pair by benchmarks.decoders.
        needs="speculative.draft_variant",
        params=Params(draft="ar", draft_tokens=4),
    )
)
register(
    DecoderSpec(
        id="speculative_cmlm8",
        label="speculative (CMLM draft, 8)",
        **EXACT_PARALLEL,
        description=(
            "Speculative decoding with the experiment's CMLM model as the draft (`eval."
            "speculative.cmlm_variant`): one masked pass proposes the next 8 tokens (given the "
            "reference length, as mask-predict is) and the AR target verifies them."
        ),
        decode=_speculative(num_draft_tokens=8, cmlm=True),
        applies_to=next_token_model(),
        timing_mask=None,
        needs="speculative.cmlm_variant",
        params=Params(draft="cmlm", draft_tokens=8),
    )
)
