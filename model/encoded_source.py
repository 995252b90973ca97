"""An encoder-decoder with its source encoded once: what a training step's loss calls.

In the one-row layout `BOS source SEP target EOS` (data/batching.py) both of an
encoder-decoder's stacks run over the whole row, and its LM head too: at the translation shape
about a third of the positions do useful work. A split batch (`data.batching.split_seq2seq`)
holds each row's prompt `BOS source SEP` [B, S] apart from its decoder row `SEP target EOS`
[B, U] (prefix length 1), each padded to its own width. `EncodedSource` runs the encoder once
over the prompts and answers the calls an objective makes of a model (`__call__`,
`length_logits`, `prompt_source`, `cfg`) over the decoder rows alone, so every objective trains
unchanged:
- the encoder reads source tokens only, the decoder and LM head target slots only;
- the decoder's positions count from its SEP (`decoder_positions="target"`), or from the
  prompt's SEP in the row (`"row"`, runs saved before 2026-12-07);
- the length head and every decoder pass of the loss (GLAT's two, CTC's canvas) read the one
  encoder output, as fairseq's NAT models reuse `encoder_out`.

Shape legend: B rows, S prompt width (`BOS source SEP`), U decoder row width, D model width.
"""

import jax
import jax.numpy as jnp

from model.decoder import PromptSource, default_positions


class EncodedSource:
    """An `EncoderDecoder` whose decoder calls read split rows against one encoder pass."""

    def __init__(self, model, source_BxS, source_lengths_B, dropout_rng=None):
        self.model = model
        self.cfg = model.cfg
        self.source_BxS = source_BxS
        self.source_lengths_B = source_lengths_B
        self.memory, self._last_BxD = model.encode_prompt(source_BxS, source_lengths_B, dropout_rng)

    def __call__(
        self,
        tokens_BxU: jax.Array,
        *,
        positions_BxT: jax.Array | None = None,
        lengths_B: jax.Array | None = None,
        prefix_lengths_B: jax.Array | None = None,
        dropout_rng: jax.Array | None = None,
        cache=None,
        noisy_BxT: jax.Array | None = None,
    ) -> tuple[jax.Array, None]:
        """(logits [B, U, V], None): the decoder over rows `SEP target...` (positions counted
        from SEP; `prefix_lengths_B` defaults to 1, the SEP), cross-attending to the source."""
        if cache is not None or noisy_BxT is not None:
            raise ValueError("An encoded source serves parallel training passes: no cache, noise")
        B, U = tokens_BxU.shape
        if prefix_lengths_B is None:
            prefix_lengths_B = jnp.ones((B,), jnp.int32)
        targets_BxU = default_positions(tokens_BxU, positions_BxT)
        if self.cfg.source_copy_id >= 0:
            last_B = U if lengths_B is None else lengths_B
            tokens_BxU = copy_source(
                tokens_BxU,
                targets_BxU - prefix_lengths_B[:, None],
                last_B - prefix_lengths_B,
                self.source_BxS,
                self.source_lengths_B - 2,
                self.cfg.source_copy_id,
            )
        positions_BxU = targets_BxU
        if self.cfg.decoder_positions == "row":  # The row's positions: SEP at the prompt's end.
            positions_BxU = targets_BxU + (self.source_lengths_B - 1)[:, None]
            prefix_lengths_B = prefix_lengths_B + self.source_lengths_B - 1
        return self.model.from_embeddings(
            self.model.embed(tokens_BxU, positions_BxU),
            positions_BxT=positions_BxU,
            lengths_B=lengths_B,
            prefix_lengths_B=prefix_lengths_B,
            dropout_rng=dropout_rng,
            memory=self.memory,
        )

    def length_logits(self, prompts_BxP: jax.Array, prompt_lengths_B: jax.Array) -> jax.Array:
        """Logits [B, max_len + 1] of each row's target length, from the encoder pass already
        made (its state at SEP); the decoder rows passed in carry no source."""
        del prompts_BxP, prompt_lengths_B
        return self.model.length_logits_of(self._last_BxD)

    def prompt_source(self, inputs_BxU: jax.Array, prefix_lengths_B: jax.Array) -> PromptSource:
        """The encoded prompts: a decoder row holds only its SEP before the target."""
        del inputs_BxU, prefix_lengths_B
        return PromptSource(self.source_BxS, self.source_lengths_B, 1)


def copy_source(tokens_BxT, slot_BxT, slots_B, source_BxP, words_B, copy_id: int) -> jax.Array:
    """`tokens_BxT` with each `copy_id` at a target slot (`slot_BxT` >= 0, of `slots_B` in its
    row) replaced by a source word: row b's `words_B` words follow the BOS of `source_BxP`.

    Slot j takes word round(j (S - 1) / (T - 1)) of S words and T slots, as fairseq's
    `_uniform_assignment` (fairseq/models/nat/nonautoregressive_transformer.py) maps target to
    source positions; the token's embedding is then that word's, as --src-embedding-copy gives
    the decoder.
    """
    slots_B = jnp.maximum(slots_B, 1)
    step_B = (jnp.maximum(words_B, 1) - 1) / jnp.maximum(slots_B - 1, 1)
    word_BxT = jnp.round(slot_BxT * step_B[:, None]).astype(jnp.int32)
    index_BxT = jnp.clip(1 + word_BxT, 0, source_BxP.shape[1] - 1)
    copies_BxT = jnp.take_along_axis(source_BxP, index_BxT, axis=1)
    copy_BxT = (tokens_BxT == copy_id) & (slot_BxT >= 0)
    return jnp.where(copy_BxT, copies_BxT, tokens_BxT).astype(tokens_BxT.dtype)
