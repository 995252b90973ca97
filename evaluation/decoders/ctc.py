"""The CTC row of the decoders table: one parallel pass over the canvas, argmax per slot, then
the collapse (model/ctc.py). It finds each row's length itself: no oracle length, no length
head."""

from data import vocab
from evaluation.decoders.table import DecoderSpec, Models, Params, Prompts, register
from model import GenerateOutput
from model.ctc import ctc_generate


def alignment_model(ratio: int):
    """Scored on models trained with an alignment (CTC) objective of this canvas ratio."""
    return lambda mask, objective: (
        objective.model_kind == "alignment" and objective.canvas_ratio == ratio
    )


def ctc_spec(ratio: int) -> DecoderSpec:
    """CTC decoding of a canvas of `ratio` slots per source token."""

    def decode(models: Models, prompts: Prompts) -> GenerateOutput:
        return ctc_generate(
            models.model, prompts.prompts_BxP, prompts.prompt_lengths_B, ratio=ratio,
            max_new_tokens=prompts.max_new_tokens, blank_id=vocab.MASK, eos_id=prompts.eos_id,
        )  # fmt: skip

    return DecoderSpec(
        id="ctc" if ratio == 2 else f"ctc_r{ratio}",
        label="CTC (one pass)" if ratio == 2 else f"CTC (one pass, canvas x{ratio})",
        family="non-AR",
        description=(
            f"CTC: one parallel pass over a canvas of {ratio} slots per source token (the source "
            "copied uniformly), the likeliest token or blank per slot, then repeats merged and "
            "blanks dropped; the output's length is its own (no oracle length)."
        ),
        decode=decode,
        applies_to=alignment_model(ratio),
        timing_mask="prefix_full",
        params=Params(iterations=1, canvas_ratio=ratio),
    )


register(ctc_spec(2))
