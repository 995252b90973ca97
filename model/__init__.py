"""The decoder with a switchable attention mask, its KV cache, and its decoders. No I/O here."""

from model.attention import EMPTY, make_attention_mask
from model.config import MASK_KINDS, ModelConfig
from model.decoder import Decoder, KVCache, init_cache, make_decoder
from model.sampling import (
    GenerateOutput,
    decode_loop,
    generate,
    generate_no_cache,
    sample_logits,
)

__all__ = [
    "EMPTY",
    "MASK_KINDS",
    "Decoder",
    "GenerateOutput",
    "KVCache",
    "ModelConfig",
    "decode_loop",
    "generate",
    "generate_no_cache",
    "init_cache",
    "make_attention_mask",
    "make_decoder",
    "sample_logits",
]
