"""The non-AR rows of the decoders table: mask-predict with K parallel passes (model/nar.py),
given each row's reference length or predicting it with the model's length head.

Ghazvininejad et al. 2019's translation table has K = 1, 4 and 10, each with a length beam of 1
and 3. The rows the default set lacks (K = 10 with the oracle length and with both beams, K = 1
with a beam of 3) are scored only where `eval.decoders` names them, so that other experiments do
not pay for ten passes per batch.
"""

import numpy as np

from data import vocab
from evaluation.decoders.table import (
    DecoderSpec,
    Models,
    Params,
    Prompts,
    masked_model,
    register,
)
from model import GenerateOutput, mask_predict


def mask_predict_spec(
    num_iterations: int, default: bool = True, use_cache: bool | None = None
) -> DecoderSpec:
    """Mask-predict with K passes, given each row's reference target length; `use_cache=False`
    re-runs the whole model every pass (benchmarks/nar.py times it against the default)."""

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
            use_cache=use_cache,
        )

    every_pass = use_cache is False
    return DecoderSpec(
        id=f"mask_predict_k{num_iterations}" + ("_every_pass" if every_pass else ""),
        label=f"mask-predict K={num_iterations}" + (", re-run every pass" if every_pass else ""),
        family="non-AR",
        description=(
            f"Mask-Predict with {num_iterations} parallel pass(es) over `prompt MASK…MASK`, given "
            "each row's reference target length (oracle length); CMLM models only."
        ),
        decode=decode,
        applies_to=masked_model,
        timing_mask="prefix_full",
        default=default,
        params=Params(iterations=num_iterations),
    )


def predicted_length_spec(
    num_iterations: int, length_beam: int, default: bool = True
) -> DecoderSpec:
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
        id=f"mask_predict_k{num_iterations}_lb{length_beam}",
        label=f"mask-predict K={num_iterations}, predicted length (beam {length_beam})",
        family="non-AR",
        description=(
            f"Mask-Predict with {num_iterations} pass(es), the target length predicted by the "
            f"model's length head: its {length_beam} likeliest length(s) decoded side by side, "
            "the best mean log-probability kept. Models with a length head only."
        ),
        decode=decode,
        applies_to=masked_model,
        timing_mask="prefix_full",
        needs_length_head=True,
        default=default,
        params=Params(iterations=num_iterations, length_beam=length_beam),
    )


for _K in (1, 2, 4, 8):
    register(mask_predict_spec(_K))
for _K, _BEAM in ((1, 1), (4, 1), (4, 3)):
    register(predicted_length_spec(_K, _BEAM))
register(mask_predict_spec(10, default=False))
for _K, _BEAM in ((1, 3), (10, 1), (10, 3)):
    register(predicted_length_spec(_K, _BEAM, default=False))
