"""The decoders table: every way this project turns a prompt into a continuation.

Quality scoring (evaluation/quality.py), speed timing (evaluation/speed.py), distill.py and the
benchmarks all read `DECODERS` (id -> DecoderSpec), so a new decoder is one
`register(DecoderSpec(...))` call: it then appears in the report's quality, speed and verdict
tables. One module per family registers its rows: ar.py, non_ar.py, exact_parallel.py,
diffusion.py. A decoder is a function `decode(models, prompts) -> GenerateOutput`
(model/sampling.py's layout: prompt, continuation, EOS, then padding; `lengths_B` counts the
prompt and the continuation), plus what the tables need to know about it: a stable id, a label,
its family, its parameters (`Params`: K, T, the length beam, ...; the verdicts read these, never
the id), the variants it is scored on, the mask of the model it is timed on, and any statistics
of its own (with their MetricSpecs). Shape legend: B rows, P prompt width.

Example: sampling at temperature 0.8 as a new decoder (add its id to `eval.decoders` to score
it, and to `eval.speed.decoders` to time it):

    from evaluation import decoders
    from model import generate

    def sample_t08(models, prompts):          # -> GenerateOutput(tokens_BxL, lengths_B)
        return generate(models.model, prompts.prompts_BxP, prompts.prompt_lengths_B,
                        max_new_tokens=prompts.max_new_tokens, eos_id=prompts.eos_id,
                        temperature=0.8)

    decoders.register(decoders.DecoderSpec(
        id="ar_cache_t08", label="AR (cache, T=0.8)", family="AR",
        description="Sampling at temperature 0.8.", decode=sample_t08,
        applies_to=decoders.next_token_model(), timing_mask="causal", default=False))

A decoder that needs a second model (a draft, a baseline) sets `needs="speculative.draft_variant"`
(the key under `config.eval` naming that variant) and receives it as `models.second`. One whose
statistics alone read a second model (the AR model that scores samples) sets `statistics_needs`
instead: it then decodes and is timed alone.
"""

from evaluation.decoders import ar, ctc, diffusion, exact_parallel, non_ar
from evaluation.decoders.table import (
    DECODERS,
    FAMILIES,
    DecoderSpec,
    GenerateOutput,
    Models,
    Params,
    Prompts,
    describe,
    diffusion_model,
    lookup,
    masked_model,
    next_token_model,
    register,
    register_family,
    scored_on,
)

__all__ = [
    "DECODERS",
    "FAMILIES",
    "DecoderSpec",
    "GenerateOutput",
    "Models",
    "Params",
    "Prompts",
    "ar",
    "ctc",
    "describe",
    "diffusion",
    "diffusion_model",
    "exact_parallel",
    "lookup",
    "masked_model",
    "next_token_model",
    "non_ar",
    "register",
    "register_family",
    "scored_on",
]
