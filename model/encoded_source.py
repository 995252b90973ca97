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
        B = tokens_BxU.shape[0]
        if prefix_lengths_B is None:
            prefix_lengths_B = jnp.ones((B,), jnp.int32)
        positions_BxU = default_positions(tokens_BxU, positions_BxT)
        if self.cfg.decoder_positions == "row":  # The row's positions: SEP at the prompt's end.
            positions_BxU = positions_BxU + (self.source_lengths_B - 1)[:, None]
            prefix_lengths_B = prefix_lengths_B + self.source_lengths_B - 1
        logits_BxUxV, _ = self.model(
            tokens_BxU,
            positions_BxT=positions_BxU,
            lengths_B=lengths_B,
            prefix_lengths_B=prefix_lengths_B,
            dropout_rng=dropout_rng,
            memory=self.memory,
        )
        return logits_BxUxV, None

    def length_logits(self, prompts_BxP: jax.Array, prompt_lengths_B: jax.Array) -> jax.Array:
        """Logits [B, max_len + 1] of each row's target length, from the encoder pass already
        made (its state at SEP); the decoder rows passed in carry no source."""
        del prompts_BxP, prompt_lengths_B
        return self.model.length_logits_of(self._last_BxD)

    def prompt_source(self, inputs_BxU: jax.Array, prefix_lengths_B: jax.Array) -> PromptSource:
        """The encoded prompts: a decoder row holds only its SEP before the target."""
        del inputs_BxU, prefix_lengths_B
        return PromptSource(self.source_BxS, self.source_lengths_B, 1)
