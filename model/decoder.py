"""A pre-LN transformer decoder: one function of (tokens, mask kind), with an optional KV cache.

`Decoder` is also the "decoder" architecture: its class attributes and classmethods (`name`,
`mask_kinds`, `num_params`, ...) are what the rest of the code knows about it, and a subclass
with its own `name` is another architecture (model/architectures.py registers them).
"""

import functools
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from model import sharding
from model.attention import Memory, make_attention_mask, write_slots
from model.block import Block, dropout
from model.cache import KVCache
from model.config import ModelConfig
from model.costs import DecoderCosts
from model.masks import EMPTY


class PromptSource(NamedTuple):
    """Where a model's rows take their source from (`prompt_source`)."""

    prompts_BxP: jax.Array  # Rows that start `BOS source SEP`.
    lengths_B: jax.Array  # Each row's `BOS source SEP` length.
    width: int  # The widest prompt that the model's own rows may hold before their target.


class Decoder(DecoderCosts, nnx.Module):
    """Token + learned position embeddings, `num_layers` blocks, final LayerNorm, LM head."""

    # The architecture's id (ModelConfig.architecture, flags, metric keys), and its label.
    name: ClassVar[str] = "decoder"
    label: ClassVar[str] = "decoder"
    # The mask kinds it takes (None: every registered kind, as one stack over `BOS source SEP
    # target` does); `mask_kinds_reason` says why an architecture takes fewer (it ends the error
    # that names a kind it refuses).
    mask_kinds: ClassVar[tuple[str, ...] | None] = None
    mask_kinds_reason: ClassVar[str] = ""
    cross_attention: ClassVar[bool] = False  # Whether the blocks cross-attend.
    # Whether an encoder reads the prompt (`encode_prompt`, `decoder_logits`), so that its state
    # never depends on the target under any mask and a parallel decoder computes it once a call.
    encodes_prompt: ClassVar[bool] = False
    # ModelConfig settings added since runs of this architecture were first saved, with the
    # value that reproduces what such a run did (sections/run_plan.py reads saved runs with it).
    saved_before: ClassVar[dict] = {}
    attention_stacks: ClassVar[int] = 1  # Attention score products per layer and token.
    # Whether it trains on split batches (`data.batching.split_seq2seq`: the source apart from
    # the target, `for_batch`), so that each stack runs over its own tokens only.
    trains_split: ClassVar[bool] = False

    @classmethod
    def takes_mask(cls, mask_kind: str) -> bool:
        """Whether a model of this architecture can have `attention_mask_kind=mask_kind`."""
        return cls.mask_kinds is None or mask_kind in cls.mask_kinds

    @classmethod
    def refusal(cls, objective) -> str | None:
        """The one-line error refusing to train with `objective` (a objectives record,
        read by its properties), or None where this architecture trains with it."""
        return None

    @classmethod
    def timing_mask(cls, mask_kind: str) -> str:
        """The mask of the random-weights model that a decoder wanting `mask_kind` is timed on."""
        return mask_kind

    @classmethod
    def mask_label(cls, mask_kind: str) -> str:
        """A model's mask, as the report's summary names it."""
        return mask_kind

    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
        self.cfg = cfg
        kw = dict(dtype=cfg.compute_dtype, param_dtype=cfg.weight_dtype, rngs=rngs)
        init = nnx.initializers.normal(0.02)
        # Parameters record their logical axis names (model/sharding.py); training places them
        # on the mesh afterwards, so none is sharded while it is created.
        with nnx.use_eager_sharding(False):
            self.token_embed = nnx.Embed(
                cfg.vocab_size, cfg.d_model, embedding_init=sharding.named(init, "vocab", "embed"),
                **kw,
            )  # fmt: skip
            self.position_embed = nnx.Embed(
                cfg.max_len, cfg.d_model, embedding_init=sharding.named(init, "positions", "embed"),
                **kw,
            )  # fmt: skip
            self.blocks = nnx.List(
                [
                    Block(cfg, rngs=rngs, cross_attention=self.cross_attention)
                    for _ in range(cfg.num_layers)
                ]
            )
            self.ln_final = sharding.layer_norm(cfg.d_model, **kw)
            self.lm_head = sharding.linear(cfg.d_model, cfg.vocab_size, ("embed", "vocab"), **kw)
            if cfg.length_head:  # Classes 0 .. max_len: a target length.
                self.length_head = sharding.linear(
                    cfg.d_model, cfg.max_len + 1, ("embed", "vocab"), **kw
                )

    def embed(self, tokens_BxT: jax.Array, positions_BxT: jax.Array) -> jax.Array:
        """Input embeddings; split out so leakage metrics can differentiate through them."""
        return self.token_embed(tokens_BxT) + self.position_embed(positions_BxT)

    def __call__(
        self,
        tokens_BxT: jax.Array,
        *,
        positions_BxT: jax.Array | None = None,
        lengths_B: jax.Array | None = None,
        prefix_lengths_B: jax.Array | None = None,
        cache: KVCache | None = None,
        dropout_rng: jax.Array | None = None,
        noisy_BxT: jax.Array | None = None,
        memory: Memory | None = None,
    ) -> tuple[jax.Array, KVCache | None]:
        """Logits [B, T, V] (float32) and the updated cache (None without one).

        `noisy_BxT` (block_causal only, no cache): True on the tokens of a row's noised copy,
        for block diffusion's training pass (`make_attention_mask`). `memory`: an encoder
        output that the caller computed once, for the blocks to cross-attend to (None: the
        architecture's own, `self.memory`).

        Called eagerly (not under jit), token ids outside [0, vocab_size) raise a ValueError:
        an embedding lookup would otherwise return NaN for them, silently.
        """
        if not isinstance(tokens_BxT, jax.core.Tracer):
            _check_token_ids(tokens_BxT, self.cfg.vocab_size)
        positions_BxT = default_positions(tokens_BxT, positions_BxT)
        x_BxTxD = self.embed(tokens_BxT, positions_BxT)
        return self.from_embeddings(
            x_BxTxD,
            positions_BxT=positions_BxT,
            lengths_B=lengths_B,
            prefix_lengths_B=prefix_lengths_B,
            cache=cache,
            dropout_rng=dropout_rng,
            noisy_BxT=noisy_BxT,
            memory=memory,
        )

    def from_embeddings(
        self,
        x_BxTxD: jax.Array,
        *,
        positions_BxT: jax.Array,
        lengths_B: jax.Array | None = None,
        prefix_lengths_B: jax.Array | None = None,
        cache: KVCache | None = None,
        dropout_rng: jax.Array | None = None,
        noisy_BxT: jax.Array | None = None,
        memory: Memory | None = None,
        logits_from: int = 0,
    ) -> tuple[jax.Array, KVCache | None]:
        """The decoder after the embedding lookup.

        `lengths_B` counts the real tokens at the start of each row of this call's input (default
        T); the rest is padding, invisible to every query. With a cache, the T inputs are written
        at slots [cache.index, cache.index + T) and attend to everything written before them.
        `logits_from` (no cache): the logits of the columns from it on alone, [B, T -
        logits_from, V]; the columns before it are keys and values only (block diffusion's
        clean copy, model/diffusion.py), so the last layer and the LM head skip them.
        """
        B, T, _ = x_BxTxD.shape
        if lengths_B is None:
            new_key_positions_BxT = positions_BxT
        else:
            real_BxT = jnp.arange(T)[None, :] < lengths_B[:, None]
            new_key_positions_BxT = jnp.where(real_BxT, positions_BxT, EMPTY)
        if cache is None:
            key_positions_BxS = new_key_positions_BxT
        else:
            key_positions_BxS = write_slots(
                cache.key_positions_BxS, new_key_positions_BxT, cache.index, axis=1
            )
        if noisy_BxT is not None and cache is not None:
            raise ValueError("noisy_BxT (block diffusion's training pass) takes no cache")
        mask_Bx1xTxS = self.self_attention_mask(
            positions_BxT, key_positions_BxS, prefix_lengths_B, noisy_BxT
        )
        rngs = (
            jax.random.split(dropout_rng, 2 * self.cfg.num_layers + 1)
            if dropout_rng is not None
            else [None] * (2 * self.cfg.num_layers + 1)
        )
        x_BxTxD = x_BxTxD.astype(self.cfg.compute_dtype)
        decoder_x_BxTxD = self.decoder_inputs(x_BxTxD, positions_BxT, prefix_lengths_B)
        dropped_BxTxD = dropout(x_BxTxD, self.cfg.dropout_rate, rngs[-1])
        if decoder_x_BxTxD is x_BxTxD:  # One stack's input (a decoder's).
            decoder_x_BxTxD = dropped_BxTxD
        else:  # An encoder-decoder's decoder input: the same dropout mask.
            decoder_x_BxTxD = dropout(decoder_x_BxTxD, self.cfg.dropout_rate, rngs[-1])
        x_BxTxD = dropped_BxTxD
        if memory is None:
            memory = self.memory(
                x_BxTxD, new_key_positions_BxT, prefix_lengths_B, cache,
                rngs[self.cfg.num_layers : -1],
            )  # fmt: skip
        if logits_from and cache is not None:
            raise ValueError("logits_from is for a pass without a cache")
        x_BxTxD, new_layers = self._blocks(
            decoder_x_BxTxD, mask_Bx1xTxS, cache, rngs, memory, logits_from
        )
        logits_BxTxV = self.lm_head(x_BxTxD).astype(jnp.float32)
        if cache is None:
            return logits_BxTxV, None
        return logits_BxTxV, cache._replace(
            layers=tuple(new_layers),
            key_positions_BxS=key_positions_BxS,
            index=cache.index + T,
            memory=memory,
        )

    def self_attention_mask(
        self, positions_BxT, key_positions_BxS, prefix_lengths_B, noisy_BxT=None
    ):
        """Boolean [B, 1, T, S]: which keys each query's self-attention sees."""
        return make_attention_mask(
            self.cfg.attention_mask_kind,
            positions_BxT,
            key_positions_BxS,
            prefix_lengths_B,
            block_size=self.cfg.block_size,
            noisy_queries_BxT=noisy_BxT,
            noisy_keys_BxS=noisy_BxT,
        )

    def decoder_inputs(self, x_BxTxD, positions_BxT, prefix_lengths_B):
        """The blocks' input from `embed`'s output: the same here (model/encoder_decoder.py
        renumbers its decoder's positions)."""
        del positions_BxT, prefix_lengths_B
        return x_BxTxD

    def memory(self, x_BxTxD, key_positions_BxT, prefix_lengths_B, cache, dropout_rngs):
        """What the blocks cross-attend to: nothing in a decoder (model/encoder_decoder.py)."""
        del x_BxTxD, key_positions_BxT, prefix_lengths_B, cache, dropout_rngs
        return None

    def for_batch(self, batch: dict, dropout_rng: jax.Array | None = None) -> "Decoder":
        """The model a loss calls on `batch`: itself, for rows `BOS source SEP target EOS`. A
        split batch (`source` apart from the decoder rows) needs an encoder."""
        del dropout_rng
        if "source" in batch:
            raise ValueError(
                f"A split batch (source apart from target) needs an encoder; the {self.name} "
                "architecture reads one row `BOS source SEP target EOS`."
            )
        return self

    def prompt_source(self, inputs_BxT: jax.Array, prefix_lengths_B: jax.Array) -> PromptSource:
        """Where these rows' source words are: in the rows themselves, before their target."""
        return PromptSource(inputs_BxT, prefix_lengths_B, inputs_BxT.shape[1])

    def length_logits(self, prompts_BxP: jax.Array, prompt_lengths_B: jax.Array) -> jax.Array:
        """Logits [B, max_len + 1] of each row's target length, from its prompt alone (the
        hidden state of its last prompt token, e.g. SEP). Needs `length_head=True`.

        The rows may run past their prompts (a training batch's whole rows). Where every prompt
        is BOS alone (plain text), the pass reads that one column, not a second pass over the
        whole row beside the loss's (`lax.cond`; the keys past a prompt are masked anyway).
        Both branches recompute their pass in the backward (jax.checkpoint): without it, the
        cond's backward carries the whole row's activations even where it took the narrow
        branch (zeros, at half a pass's cost); with it, a whole-row pass costs 4/3 of one.
        """
        P = prompts_BxP.shape[1]
        narrow, whole = (
            jax.checkpoint(functools.partial(self._length_logits_over, width=w)) for w in (1, P)
        )
        bos_alone = jnp.max(prompt_lengths_B) <= 1
        return jax.lax.cond(bos_alone, narrow, whole, prompts_BxP, prompt_lengths_B)

    def _length_logits_over(self, prompts_BxP, prompt_lengths_B, *, width: int) -> jax.Array:
        """`length_logits` over the first `width` columns (each prompt fits in them)."""
        prompts_BxW = prompts_BxP[:, :width]
        positions_BxW = default_positions(prompts_BxW, None)
        real_BxW = jnp.arange(width)[None, :] < prompt_lengths_B[:, None]
        mask_Bx1xWxW = self.self_attention_mask(
            positions_BxW, jnp.where(real_BxW, positions_BxW, EMPTY), prompt_lengths_B
        )
        x_BxWxD = self.embed(prompts_BxW, positions_BxW).astype(self.cfg.compute_dtype)
        x_BxWxD, _ = self._blocks(x_BxWxD, mask_Bx1xWxW, None, [None] * self.cfg.num_layers, None)
        last_BxD = jnp.take_along_axis(x_BxWxD, (prompt_lengths_B - 1)[:, None, None], axis=1)
        return self.length_head(last_BxD[:, 0]).astype(jnp.float32)

    def _blocks(
        self, x_BxTxD, mask_Bx1xTxS, cache, layer_rngs, memory: Memory | None, outputs_from=0
    ):
        """The blocks, then the final LayerNorm: (hidden states, each layer's cache). With
        `outputs_from`, the hidden states of the columns from it on alone: the last layer
        computes the others' keys and values only, since nothing reads their outputs."""
        new_layers = []
        crosses = self.cross_inputs(memory, x_BxTxD.shape[1])
        masks = [mask_Bx1xTxS] * len(self.blocks)
        starts = [0] * len(self.blocks)
        if outputs_from:  # The last layer's queries: the columns from outputs_from on.
            starts[-1], masks[-1] = outputs_from, mask_Bx1xTxS[:, :, outputs_from:]
            if crosses[-1] is not None:
                crosses[-1] = (crosses[-1][0], crosses[-1][1][:, :, outputs_from:])
        for i, block in enumerate(self.blocks):
            x_BxTxD, layer_cache = block(
                x_BxTxD,
                masks[i],
                None if cache is None else cache.layers[i],
                None if cache is None else cache.index,
                layer_rngs[i],
                crosses[i],
                queries_from=starts[i],
            )
            new_layers.append(layer_cache)
        return self.ln_final(x_BxTxD), new_layers

    def cross_inputs(self, memory: Memory | None, T: int) -> list:
        """Each block's `cross` argument for T queries: None without an encoder; else its keys
        and values of the encoder output (projected here unless the memory holds them), and
        the mask [B, 1, T, P] of the source keys."""
        if memory is None:
            return [None] * len(self.blocks)
        real_Bx1x1xP = (memory.key_positions_BxP != EMPTY)[:, None, None, :]
        B, _, _, P = real_Bx1x1xP.shape
        mask_Bx1xTxP = jnp.broadcast_to(real_Bx1x1xP, (B, 1, T, P))
        return [
            (memory.layers[i] if memory.layers else block.cross.keys_values(memory.states_BxPxD),
             mask_Bx1xTxP)
            for i, block in enumerate(self.blocks)
        ]  # fmt: skip


def _check_token_ids(tokens_BxT, vocab_size: int) -> None:
    tokens = np.asarray(tokens_BxT)
    if not np.issubdtype(tokens.dtype, np.integer):
        raise ValueError(f"tokens must be ints, got {tokens.dtype}")
    if tokens.size and (tokens.min() < 0 or tokens.max() >= vocab_size):
        raise ValueError(
            f"token ids must be in [0, {vocab_size}) (vocab_size), got values in "
            f"[{tokens.min()}, {tokens.max()}]"
        )


def default_positions(tokens_BxT: jax.Array, positions_BxT: jax.Array | None) -> jax.Array:
    """`positions_BxT`, or 0 .. T - 1 in every row when it is None."""
    if positions_BxT is not None:
        return positions_BxT
    B, T = tokens_BxT.shape
    return jnp.broadcast_to(jnp.arange(T, dtype=jnp.int32), (B, T))


_CONFIGS: dict[nnx.GraphDef, ModelConfig] = {}


def split_model(
    model: "Decoder | tuple[nnx.GraphDef, nnx.State]",
) -> tuple[nnx.GraphDef, nnx.State, ModelConfig]:
    """(graphdef, state, cfg) of a Decoder or of its `nnx.split`.

    The config lives in the (static) graphdef, so a split model's config is merged out once per
    graphdef, not on every decoder call.
    """
    if not isinstance(model, tuple):
        graphdef, state = nnx.split(model)
        return graphdef, state, model.cfg
    graphdef, state = model
    if graphdef not in _CONFIGS:
        _CONFIGS[graphdef] = nnx.merge(graphdef, state).cfg
    return graphdef, state, _CONFIGS[graphdef]
