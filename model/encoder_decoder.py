"""The seed's encoder-decoder: a bidirectional encoder over the source, and a decoder with the
switchable self-attention mask plus cross-attention to the encoder output.

It reads the decoder's one-row layout, `BOS source SEP target EOS` with `prefix_lengths` (the
`BOS source SEP` tokens; data/batching.py), and answers the decoder's calls, so every sampler,
trainer and evaluator serves both architectures unchanged:
- The encoder reads positions [0, prefix_len): each sees every real source token, never a target.
- The decoder reads `SEP target...`: its self-attention sees keys at positions >= prefix_len - 1
  only, under `attention_mask_kind` ("causal", or "full": the leak), and every block
  cross-attends to every source token. Its outputs at source positions attend to themselves
  alone and are never scored.
- With a cache, the first call (the prefill: `cache.memory` is None) runs the encoder and keeps
  each decoder layer's cross-attention keys and values in `cache.memory`; later calls reuse them,
  and only the self-attention cache grows. Decode steps never run the encoder.
- Training reads split batches instead (`for_batch`, model/encoded_source.py): the prompts and
  the decoder rows apart, each stack over its own tokens, the encoder run once per step.
The token and position embeddings are shared by both stacks.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from model import sharding
from model.attention import Memory, make_attention_mask
from model.block import Block, dropout
from model.config import ModelConfig
from model.decoder import Decoder, default_positions
from model.encoded_source import EncodedSource
from model.masks import EMPTY


class EncoderDecoder(Decoder):
    """`num_layers` encoder blocks, `num_layers` decoder blocks that cross-attend, one LM head."""

    name = "encoder_decoder"
    label = "encoder-decoder"
    mask_kinds = ("causal", "full")  # The decoder's self-attention mask.
    mask_kinds_reason = "its encoder already sees the whole source"
    cross_attention = True  # The decoder's blocks, which Decoder.__init__ builds.
    attention_stacks = 3  # The encoder's self-attention, the decoder's self- and cross-attention.
    encodes_prompt = True  # The prompt's state (`encode_prompt`) never depends on the target.
    trains_split = True  # Its encoder reads the source, its decoder the target (`for_batch`).
    saved_before = {"decoder_positions": "row"}  # Runs saved before 2026-12-07 count row positions.

    @classmethod
    def refusal(cls, objective) -> str | None:
        """An objective that steps through the cache from BOS: the source must be encoded first."""
        if objective.steps_through_cache:
            return (
                f"train.objective={objective.id!r} feeds one token at a time from BOS, but an "
                "encoder_decoder must encode the whole source first; use teacher_forcing."
            )
        return None

    @classmethod
    def timing_mask(cls, mask_kind: str) -> str:
        """A decoder wanting a prefix mask is timed on the decoder mask it has here: the encoder
        is the prefix. Block diffusion is timed as MDLM, one block: the only diffusion mask an
        encoder-decoder has."""
        return {"prefix": "causal", "prefix_full": "full", "block_causal": "full"}.get(
            mask_kind, mask_kind
        )

    @classmethod
    def mask_label(cls, mask_kind: str) -> str:
        """The kind after "enc-dec, ": the mask is its decoder's (the encoder sees the source)."""
        return f"enc-dec, {mask_kind}"

    @classmethod
    def num_params(cls, cfg: ModelConfig) -> int:
        """The decoder's (with cross-attention), plus the encoder blocks and LayerNorm."""
        return super().num_params(cfg) + cfg.num_layers * Block.num_params(cfg) + 2 * cfg.d_model

    @classmethod
    def matmul_params(cls, cfg: ModelConfig) -> int:
        """The decoder's, plus the encoder's: every position runs through both stacks (one row
        holds source and target)."""
        return super().matmul_params(cfg) + cfg.num_layers * Block.matmul_params(cfg)

    @classmethod
    def train_flops(cls, cfg: ModelConfig, batch: dict) -> float:
        """Forward + backward FLOPs of a train step: a one-row batch's as the decoder's; a split
        batch's (S source, U decoder columns) from each stack's own width, 6 x (multiply-adds)
        and 12 x L S T D for each attention product (`train_flops_per_token`).

        Per row: the encoder's blocks over S positions; the decoder's over U, but for the
        cross-attention's keys and values, projected from the S encoder states; the LM head
        over U.
        """
        if "source" not in batch:
            return super().train_flops(cfg, batch)
        B, encoder, decoder, cross_keys_values, encoder_products, decoder_products = (
            cls._split_terms(cfg, batch)
        )
        matmuls = encoder + decoder + cross_keys_values
        return float(B * (6.0 * matmuls + 12.0 * (encoder_products + decoder_products)))

    @classmethod
    def decoder_pass_flops(cls, cfg: ModelConfig, batch: dict) -> float:
        """Forward FLOPs of one more decoder pass over a split batch's decoder rows against the
        encoder output the loss already has (model/encoded_source.py): the decoder's blocks and
        LM head over U, and the cross-attention's keys and values again unless the memory holds
        them (`cross_kv_cache`). A one-row batch's: the decoder's (the whole model)."""
        if "source" not in batch:
            return super().decoder_pass_flops(cfg, batch)
        B, _, decoder, cross_keys_values, _, decoder_products = cls._split_terms(cfg, batch)
        matmuls = decoder + (0 if cfg.cross_kv_cache else cross_keys_values)
        return float(B * (2.0 * matmuls + 4.0 * decoder_products))

    @staticmethod
    def _split_terms(cfg: ModelConfig, batch: dict) -> tuple:
        """Per row of a split batch (S source, U decoder columns): (B, the encoder's, the
        decoder's and the cross keys' and values' multiply-adds, and the encoder's and the
        decoder's attention products, L D x (query, key) pairs)."""
        (B, S), U = batch["source"].shape, batch["inputs"].shape[1]
        d, L = cfg.d_model, cfg.num_layers
        encoder = S * L * Block.matmul_params(cfg)
        decoder = U * (L * (Block.matmul_params(cfg, True) - 2 * d * d) + d * cfg.vocab_size)
        cross_keys_values = S * L * 2 * d * d
        return B, encoder, decoder, cross_keys_values, L * d * S * S, L * d * (U * U + U * S)

    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
        super().__init__(cfg, rngs=rngs)  # Embeddings, decoder blocks, LM head, length head.
        kw = dict(dtype=cfg.compute_dtype, param_dtype=cfg.weight_dtype, rngs=rngs)
        with nnx.use_eager_sharding(False):
            self.encoder = nnx.List([Block(cfg, rngs=rngs) for _ in range(cfg.num_layers)])
            self.ln_encoder = sharding.layer_norm(cfg.d_model, **kw)

    def __call__(self, tokens_BxT, *, positions_BxT=None, lengths_B=None, prefix_lengths_B=None,
                 cache=None, memory=None, **kwargs):  # fmt: skip
        """Decoder.__call__, with `source_copy_id`'s tokens replaced by the copied source; a
        prefill keeps the source tokens in its memory for the calls after it."""
        if self.cfg.source_copy_id < 0 or prefix_lengths_B is None:
            return super().__call__(
                tokens_BxT, positions_BxT=positions_BxT, lengths_B=lengths_B,
                prefix_lengths_B=prefix_lengths_B, cache=cache, memory=memory, **kwargs,
            )  # fmt: skip
        held = cache.memory if memory is None and cache is not None else memory
        if held is None:  # The source is this call's own rows.
            source_BxP, source_lengths_B = tokens_BxT, prefix_lengths_B
        else:  # An encoded prompt's: its real keys are its `BOS source SEP`.
            source_BxP = held.source_tokens_BxP
            source_lengths_B = (held.key_positions_BxP != EMPTY).sum(axis=1)
        positions_BxT = default_positions(tokens_BxT, positions_BxT)
        copied_BxT = self.copy_source(
            tokens_BxT, source_BxP, source_lengths_B, positions_BxT, lengths_B, prefix_lengths_B
        )
        logits_BxTxV, cache = super().__call__(
            copied_BxT, positions_BxT=positions_BxT, lengths_B=lengths_B,
            prefix_lengths_B=prefix_lengths_B, cache=cache, memory=memory, **kwargs,
        )  # fmt: skip
        if cache is not None and held is None:  # The prefill: keep the source.
            cache = cache._replace(memory=cache.memory._replace(source_tokens_BxP=tokens_BxT))
        return logits_BxTxV, cache

    def for_batch(self, batch: dict, dropout_rng: jax.Array | None = None):
        """Itself for one-row batches; for a split batch (`data.batching.split_seq2seq`), the
        model with that batch's source encoded once (model/encoded_source.py)."""
        if "source" not in batch:
            return self
        return EncodedSource(self, batch["source"], batch["source_lengths"], dropout_rng)

    def copy_source(
        self, tokens_BxT, source_BxP, source_lengths_B, positions_BxT, lengths_B, prefix_lengths_B
    ):
        """`tokens_BxT` with each `source_copy_id` at a target slot replaced by a source word.

        Row b's S source words follow the BOS of `source_BxP` (the row, or an encoded prompt),
        whose `BOS source SEP` is `source_lengths_B` long; its T target slots are the positions
        from prefix_len to this call's last real token. Slot j takes word round(j (S - 1) /
        (T - 1)), as fairseq's `_uniform_assignment`
        (fairseq/models/nat/nonautoregressive_transformer.py) maps target to source positions;
        the token's embedding is then that word's, as --src-embedding-copy gives the decoder.
        """
        if lengths_B is None:
            last_B = positions_BxT[:, -1]
        else:
            last_B = jnp.take_along_axis(positions_BxT, (lengths_B - 1)[:, None], axis=1)[:, 0]
        slots_B = jnp.maximum(last_B + 1 - prefix_lengths_B, 1)
        words_B = jnp.maximum(source_lengths_B - 2, 1)
        step_B = (words_B - 1) / jnp.maximum(slots_B - 1, 1)
        slot_BxT = positions_BxT - prefix_lengths_B[:, None]
        word_BxT = jnp.round(slot_BxT * step_B[:, None]).astype(jnp.int32)
        index_BxT = jnp.clip(1 + word_BxT, 0, source_BxP.shape[1] - 1)
        copies_BxT = jnp.take_along_axis(source_BxP, index_BxT, axis=1)
        copy_BxT = (tokens_BxT == self.cfg.source_copy_id) & (slot_BxT >= 0)
        return jnp.where(copy_BxT, copies_BxT, tokens_BxT).astype(tokens_BxT.dtype)

    def self_attention_mask(
        self, positions_BxT, key_positions_BxS, prefix_lengths_B, noisy_BxT=None
    ):
        """The decoder's mask over `SEP target...` keys; a source query sees itself alone."""
        if noisy_BxT is not None:
            raise ValueError("An encoder_decoder has no block_causal mask for noisy_BxT")
        if prefix_lengths_B is None:
            raise ValueError(
                "An encoder_decoder needs prefix_lengths (each row's `BOS source SEP` length)"
            )
        base_Bx1xTxS = make_attention_mask(
            self.cfg.attention_mask_kind, positions_BxT, key_positions_BxS
        )
        k_Bx1x1xS = key_positions_BxS[:, None, None, :]
        decoder_key_Bx1x1xS = k_Bx1x1xS >= (prefix_lengths_B - 1)[:, None, None, None]
        itself_Bx1xTxS = k_Bx1x1xS == positions_BxT[:, None, :, None]
        return (base_Bx1xTxS & decoder_key_Bx1x1xS) | itself_Bx1xTxS

    def decoder_inputs(self, x_BxTxD, positions_BxT, prefix_lengths_B):
        """`embed`'s output with, under `decoder_positions="target"`, each token's position
        embedding swapped for its target position's (SEP at 0; fairseq numbers the decoder's
        positions from its own start): the decoder's input. Source positions, never scored,
        take target position 0. The encoder reads `embed`'s output, the source from 0."""
        if self.cfg.decoder_positions == "row":
            return x_BxTxD
        last = self.cfg.max_len - 1  # Draft tokens past max_len are embedded clamped (verify).
        rows_BxT = jnp.minimum(positions_BxT, last)
        targets_BxT = jnp.clip(positions_BxT - (prefix_lengths_B - 1)[:, None], 0, last)
        swap_BxTxD = self.position_embed(targets_BxT) - self.position_embed(rows_BxT)
        return x_BxTxD + swap_BxTxD.astype(x_BxTxD.dtype)

    def memory(self, x_BxTxD, key_positions_BxT, prefix_lengths_B, cache, dropout_rngs):
        """The encoder output of this call's source tokens, or the cache's (after the prefill)."""
        if cache is not None and cache.memory is not None:
            if self.cfg.cross_kv_cache:
                return cache.memory
            # Tied to the step's slot index, the projection stays in the decode loop: XLA would
            # otherwise hoist it out (loop-invariant code motion), caching the K/V itself.
            states_BxPxD, _ = jax.lax.optimization_barrier((cache.memory.states_BxPxD, cache.index))
            return cache.memory._replace(states_BxPxD=states_BxPxD)
        states_BxTxD, source_keys_BxT = self.encode(
            x_BxTxD, key_positions_BxT, prefix_lengths_B, dropout_rngs
        )
        return self._memory_of(states_BxTxD, source_keys_BxT)

    def _memory_of(self, states_BxPxD, source_keys_BxP) -> Memory:
        """The decoder's view of an encoder output: each layer's cross-attention K/V, projected
        once here (`cross_kv_cache`), or the states themselves, projected at every call."""
        if not self.cfg.cross_kv_cache:
            return Memory((), states_BxPxD, source_keys_BxP)
        layers = tuple(block.cross.keys_values(states_BxPxD) for block in self.blocks)
        return Memory(layers, None, source_keys_BxP)

    def encode(self, x_BxTxD, key_positions_BxT, prefix_lengths_B, dropout_rngs):
        """(encoder states [B, T, D], source key positions [B, T] with EMPTY off the source).

        Every query sees every real source key; states at non-source positions are computed
        but never read (the memory's key positions hide them).
        """
        source_BxT = key_positions_BxT < prefix_lengths_B[:, None]  # EMPTY is never < a length.
        source_keys_BxT = jnp.where(source_BxT, key_positions_BxT, EMPTY)
        T = x_BxTxD.shape[1]
        mask_Bx1xTxT = jnp.broadcast_to(source_BxT[:, None, None, :], (x_BxTxD.shape[0], 1, T, T))
        for i, block in enumerate(self.encoder):
            x_BxTxD, _ = block(x_BxTxD, mask_Bx1xTxT, None, None, dropout_rngs[i])
        return self.ln_encoder(x_BxTxD), source_keys_BxT

    def encode_prompt(
        self, prompts_BxP: jax.Array, prompt_lengths_B: jax.Array, dropout_rng=None
    ) -> tuple[Memory, jax.Array]:
        """The encoder over the prompts alone (`BOS source SEP`, right-padded): (the decoder's
        memory of them, each row's encoder state [B, D] at its last prompt token, SEP, which
        the length head reads). `dropout_rng`: training's dropout, as the decoder's call
        applies it (the embeddings', then each block's)."""
        P = prompts_BxP.shape[1]
        positions_BxP = default_positions(prompts_BxP, None)
        real_BxP = jnp.arange(P)[None, :] < prompt_lengths_B[:, None]
        x_BxPxD = self.embed(prompts_BxP, positions_BxP).astype(self.cfg.compute_dtype)
        rngs = [None] * (self.cfg.num_layers + 1)
        if dropout_rng is not None:
            rngs = list(jax.random.split(dropout_rng, self.cfg.num_layers + 1))
        x_BxPxD = dropout(x_BxPxD, self.cfg.dropout_rate, rngs[-1])
        states_BxPxD, source_keys_BxP = self.encode(
            x_BxPxD, jnp.where(real_BxP, positions_BxP, EMPTY), prompt_lengths_B, rngs[:-1]
        )
        last_BxD = jnp.take_along_axis(states_BxPxD, (prompt_lengths_B - 1)[:, None, None], axis=1)
        memory = self._memory_of(states_BxPxD, source_keys_BxP)
        return memory._replace(source_tokens_BxP=prompts_BxP), last_BxD[:, 0]

    def decoder_logits(
        self, memory: Memory, tokens_BxT, positions_BxT, lengths_B, prefix_lengths_B
    ) -> jax.Array:
        """Logits [B, T, V] of the decoder alone over `tokens_BxT` (the first `lengths_B` of
        each row real), at `positions_BxT`, cross-attending to `memory` (`encode_prompt`'s):
        its self-attention sees this call's tokens only."""
        logits_BxTxV, _ = self(
            tokens_BxT,
            positions_BxT=positions_BxT,
            lengths_B=lengths_B,
            prefix_lengths_B=prefix_lengths_B,
            memory=memory,
        )
        return logits_BxTxV

    def target_logits_fn(
        self, memory: Memory, prompts_BxP, prompt_lengths_B, target_lengths_B, T: int
    ) -> Callable[[jax.Array], jax.Array]:
        """`logits_fn(tokens_BxT) -> logits_BxTxV` of T target slots, for the parallel decoders
        (mask-predict, diffusion): each call runs the decoder alone over `SEP target...`
        (positions prompt_len - 1 + j), cross-attending to `memory` (`encode_prompt`'s), so the
        encoder runs once however many passes read it."""
        sep_Bx1 = jnp.take_along_axis(prompts_BxP, (prompt_lengths_B - 1)[:, None], axis=1)
        positions_BxS = (prompt_lengths_B - 1)[:, None] + jnp.arange(1 + T, dtype=jnp.int32)[None]

        def logits_fn(tokens_BxT):
            logits_BxSxV = self.decoder_logits(
                memory,
                jnp.concatenate([sep_Bx1, tokens_BxT], axis=1),
                positions_BxS,
                1 + target_lengths_B,
                prompt_lengths_B,
            )
            return logits_BxSxV[:, 1:]  # SEP's own logits predict nothing.

        return logits_fn

    def length_logits_of(self, last_BxD: jax.Array) -> jax.Array:
        """Logits [B, max_len + 1] of each row's target length from `encode_prompt`'s state."""
        return self.length_head(last_BxD).astype(jnp.float32)

    def length_logits(self, prompts_BxP: jax.Array, prompt_lengths_B: jax.Array) -> jax.Array:
        """Logits [B, max_len + 1] of each row's target length, from the encoder state of its
        last prompt token (SEP). Needs `length_head=True`."""
        _, last_BxD = self.encode_prompt(prompts_BxP, prompt_lengths_B)
        return self.length_logits_of(last_BxD)
