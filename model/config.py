"""ModelConfig: the typed, frozen boundary between ml_collections configs and the model."""

import dataclasses
from typing import Any

import jax.numpy as jnp

from model.masks import mask_kind

FLOAT_DTYPES = ("float32", "bfloat16", "float16")
DECODER_POSITIONS = ("target", "row")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Shape and behaviour of the model.

    `architecture` is the id of a registered architecture (model/architectures.py: "decoder",
    one stack; "encoder_decoder", `num_layers` encoder and `num_layers` decoder blocks sharing
    one token embedding). `check_model` (called by `make_decoder`) validates it and the mask
    kinds it takes; this class does not know the architectures.

    `attention_mask_kind` selects how self-attention is masked, by the id of a registered
    mask kind (model/masks.py):
      causal: position t sees positions <= t (the honest AR decoder).
      full:   every position sees every non-pad position (leaks the future under teacher forcing).
      prefix: full over each row's prefix (the prompt), causal after it (prefix-LM / enc-dec).
      prefix_full: full over the prefix, which never sees the targets; each target sees every
        non-pad position. An encoder-decoder's attention in one stack (Mask-Predict's CMLM): the
        prompt's keys and values do not depend on the targets, so mask-predict caches them once.
      block_causal: the targets are cut into blocks of `block_size` tokens from the end of the
        prompt; a token sees every token of its own block and of the blocks before it, and the
        prompt (one block before the first). Block diffusion's mask (BD3-LM, Arriola et al.
        2025): block_size 1 is `causal` (`prefix` with a prompt), one block covering the
        targets is `full` (`prefix_full` with a prompt).
    """

    vocab_size: int = 32
    d_model: int = 256
    num_heads: int = 4
    num_layers: int = 4
    d_ff: int = 1024
    max_len: int = 256
    dropout_rate: float = 0.0
    attention_mask_kind: str = "causal"
    dtype: str = "float32"
    param_dtype: str = "float32"
    # A length head (CMLM models): predicts each row's target length, 0 .. max_len, from the
    # prompt's last hidden state, for mask-predict without a given length (model/nar.py).
    length_head: bool = False
    architecture: str = "decoder"
    # Encoder-decoder only: keep each layer's cross-attention keys and values of the encoder output
    # in the cache (computed once per prompt). False projects them again at every decode step,
    # as a decoder without this cache must: the same function, kept to time what the cache saves.
    cross_kv_cache: bool = True
    # block_causal only: tokens per block (1: causal).
    block_size: int = 1
    # Encoder-decoder only: where its decoder's positions count from. "target": its first token
    # (SEP) is 0, as fairseq numbers target positions, so an all-MASK target's only signal, its
    # positions, does not move with the source length; "row": the row's own positions (an
    # encoder-decoder saved before this setting existed: `EncoderDecoder.saved_before`).
    decoder_positions: str = "target"
    # Encoder-decoder only: -1, or the token id (MASK) whose input at a target slot is replaced by
    # the source token uniformly assigned to that slot: GLAT's decoder input, the copied source
    # embeddings (Gu et al. 2018's and fairseq's --src-embedding-copy; model/encoder_decoder.py).
    source_copy_id: int = -1

    def __post_init__(self):
        for name in (
            "vocab_size",
            "d_model",
            "num_heads",
            "num_layers",
            "d_ff",
            "max_len",
            "block_size",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ModelConfig.{name} must be a positive int, got {value!r}")
        if self.d_model % self.num_heads:
            raise ValueError(
                f"ModelConfig.d_model ({self.d_model}) must be divisible by "
                f"num_heads ({self.num_heads})"
            )
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ValueError(f"ModelConfig.dropout_rate must be in [0, 1), got {self.dropout_rate}")
        try:
            mask_kind(self.attention_mask_kind)
        except ValueError as error:
            raise ValueError(f"ModelConfig.{error}") from None
        if not isinstance(self.source_copy_id, int) or not (
            self.source_copy_id == -1 or 0 <= self.source_copy_id < self.vocab_size
        ):
            raise ValueError(
                f"ModelConfig.source_copy_id must be -1 (off) or a token id in "
                f"[0, {self.vocab_size}), got {self.source_copy_id!r}"
            )
        if self.decoder_positions not in DECODER_POSITIONS:
            raise ValueError(
                f"ModelConfig.decoder_positions must be one of {DECODER_POSITIONS}, got "
                f"{self.decoder_positions!r}"
            )
        for name in ("dtype", "param_dtype"):
            value = getattr(self, name)
            if value not in FLOAT_DTYPES:
                raise ValueError(f"ModelConfig.{name} must be one of {FLOAT_DTYPES}, not {value!r}")

    @property
    def mask(self):
        """The record of `attention_mask_kind` (model/masks.py)."""
        return mask_kind(self.attention_mask_kind)

    @property
    def head_dim(self) -> int:
        return self.d_model // self.num_heads

    @property
    def compute_dtype(self) -> jnp.dtype:
        return jnp.dtype(self.dtype)

    @property
    def weight_dtype(self) -> jnp.dtype:
        return jnp.dtype(self.param_dtype)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "ModelConfig":
        """Builds a config from a mapping (e.g. `config.model.to_dict()`), naming unknown keys."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"Unknown ModelConfig keys {unknown}; known keys are {sorted(known)}")
        return cls(**values)
