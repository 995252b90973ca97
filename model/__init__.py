"""The decoder (and the encoder-decoder) with a switchable attention mask, its KV cache, and its
AR and non-AR decoders.

Everything here is pure and jit-able; there is no I/O in model/.
"""

from model.architectures import (
    ARCHITECTURES,
    architecture_of,
    check_model,
    make_decoder,
    num_params,
    register_architecture,
)
from model.attention import make_attention_mask
from model.beam import BeamOutput, beam_loop, beam_search
from model.cache import KVCache, grow_cache, init_cache
from model.config import ModelConfig
from model.decoder import Decoder
from model.denoise import DIFFUSION_STRATEGIES, denoise_loop
from model.diffusion_sampling import DiffusionOutput, diffusion_generate
from model.encoder_decoder import EncoderDecoder
from model.masks import EMPTY, MASK_KINDS, MaskKind, kinds_where, mask_kind, register_mask_kind
from model.nar import mask_predict, mask_predict_loop
from model.nar_masks import cmlm_mask, glancing_mask
from model.parallel_loop import ParallelOutput
from model.sampling import (
    GenerateOutput,
    decode_loop,
    generate,
    generate_no_cache,
    sample_logits,
)
from model.speculative import (
    jacobi_generate,
    prompt_lookup_generate,
    speculative_generate,
)

__all__ = [
    "ARCHITECTURES",
    "DIFFUSION_STRATEGIES",
    "EMPTY",
    "EncoderDecoder",
    "BeamOutput",
    "MASK_KINDS",
    "ParallelOutput",
    "MaskKind",
    "Decoder",
    "GenerateOutput",
    "architecture_of",
    "beam_loop",
    "beam_search",
    "KVCache",
    "ModelConfig",
    "check_model",
    "cmlm_mask",
    "glancing_mask",
    "decode_loop",
    "denoise_loop",
    "DiffusionOutput",
    "diffusion_generate",
    "generate",
    "generate_no_cache",
    "grow_cache",
    "init_cache",
    "jacobi_generate",
    "make_attention_mask",
    "kinds_where",
    "make_decoder",
    "mask_kind",
    "mask_predict",
    "mask_predict_loop",
    "num_params",
    "prompt_lookup_generate",
    "register_architecture",
    "register_mask_kind",
    "sample_logits",
    "speculative_generate",
]
