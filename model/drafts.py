"""The drafts of model/verify.py: what proposes the G tokens that the target verifies.

A drafter is a hashable (static) description; its arrays live in a state threaded through the
decode loop. Three methods:
  - `start(params, prompts_BxP, prompt_lengths_B, target_lengths_B, sampling, eos_id, width)`
    -> state;
  - `propose(state, tokens_BxW, lengths_B, rngs_G)` -> (drafts_BxG, q_BxGxV, state): G tokens
    after each row's `lengths_B` committed tokens, and the distributions they were drawn from
    (rngs_G: G keys, one per draft position);
  - `commit(state, lengths_B, count_B, target_logits_BxG1xV)` -> state, after a round kept
    `count_B` tokens per row.
Shape legend: B rows, G draft tokens, V vocab, W buffer width, P prompt width.
"""

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from model import verify
from model.cache import KVCache, init_cache


class _ARState(NamedTuple):
    params: Any
    cache: KVCache
    prompt_lengths_B: jax.Array
    sampling: Any


@dataclasses.dataclass(frozen=True)
class ARDraft:
    """A (smaller) AR decoder with its own KV cache: G sequential one-token steps per round."""

    graphdef: nnx.GraphDef
    num_tokens: int

    def start(
        self, params, prompts_BxP, prompt_lengths_B, target_lengths_B, sampling, eos_id, width
    ):
        model = nnx.merge(self.graphdef, params)
        cache = init_cache(model.cfg, prompts_BxP.shape[0], width - 1)
        _, cache = model(
            prompts_BxP, lengths_B=prompt_lengths_B, prefix_lengths_B=prompt_lengths_B, cache=cache
        )
        return _ARState(params, cache._replace(index=prompt_lengths_B), prompt_lengths_B, sampling)

    def propose(self, state: _ARState, tokens_BxW, lengths_B, rngs_G):
        model = nnx.merge(self.graphdef, state.params)
        G, B, V = self.num_tokens, tokens_BxW.shape[0], model.cfg.vocab_size
        greedy = verify.is_greedy(state.sampling)

        def step(positions_BxT, tokens_BxT, cache, rng):
            logits_BxTxV, cache = verify.call_at(
                model, tokens_BxT, positions_BxT, state.prompt_lengths_B, cache
            )
            q_Bx1xV = verify.distribution(logits_BxTxV[:, -1:], state.sampling)
            return verify.draw(rng, q_Bx1xV, greedy)[:, 0], q_Bx1xV[:, 0], cache

        # The first step feeds the last two committed tokens: after a round that kept every
        # draft, the draft has not seen the one before the last (its slot is rewritten as is).
        positions_Bx2 = lengths_B[:, None] + jnp.array([-2, -1], jnp.int32)[None, :]
        last_two_Bx2 = jnp.take_along_axis(tokens_BxW, positions_Bx2, axis=1)
        draft_B, q_BxV, cache = step(positions_Bx2, last_two_Bx2, state.cache, rngs_G[0])
        drafts_BxG = jnp.zeros((B, G), jnp.int32).at[:, 0].set(draft_B)
        q_BxGxV = jnp.zeros((B, G, V), jnp.float32).at[:, 0].set(q_BxV)

        def next_draft(j, carry):
            drafts_BxG, q_BxGxV, cache = carry
            previous_Bx1 = jax.lax.dynamic_slice_in_dim(drafts_BxG, j - 1, 1, axis=1)
            draft_B, q_BxV, cache = step(
                (lengths_B - 1 + j)[:, None], previous_Bx1, cache, rngs_G[j]
            )
            drafts_BxG = jax.lax.dynamic_update_slice_in_dim(drafts_BxG, draft_B[:, None], j, 1)
            q_BxGxV = jax.lax.dynamic_update_slice_in_dim(q_BxGxV, q_BxV[:, None], j, 1)
            return drafts_BxG, q_BxGxV, cache

        drafts_BxG, q_BxGxV, cache = jax.lax.fori_loop(
            1, G, next_draft, (drafts_BxG, q_BxGxV, cache)
        )
        return drafts_BxG, q_BxGxV, state._replace(cache=cache)

    def commit(self, state: _ARState, lengths_B, count_B, target_logits_BxG1xV):
        return state._replace(cache=verify.forget(state.cache, lengths_B))


class _CMLMState(NamedTuple):
    params: Any
    prompt_lengths_B: jax.Array
    ends_B: jax.Array  # Where each row's target ends (prompt + target length): EOS goes there.
    sampling: Any
    eos_id: jax.Array
    memory: Any  # An encoder-decoder draft's encoder output of the prompts (else None).


@dataclasses.dataclass(frozen=True)
class CMLMDraft:
    """A CMLM model (model/nar.py): one pass over `committed MASK ... MASK` proposes G tokens.

    The masks run to each row's target length (given, as to mask-predict); the draft proposes
    EOS at that length, and after it the pad token. An encoder-decoder draft encodes the prompts
    once, in `start`, and each round runs its decoder over `SEP target...` alone.
    """

    graphdef: nnx.GraphDef
    num_tokens: int
    mask_id: int
    pad_id: int

    def start(
        self, params, prompts_BxP, prompt_lengths_B, target_lengths_B, sampling, eos_id, width
    ):
        ends_B = prompt_lengths_B + target_lengths_B
        model = nnx.merge(self.graphdef, params)
        memory = None
        if model.encodes_prompt:
            memory, _ = model.encode_prompt(prompts_BxP, prompt_lengths_B)
        return _CMLMState(params, prompt_lengths_B, ends_B, sampling, eos_id, memory)

    def propose(self, state: _CMLMState, tokens_BxW, lengths_B, rngs_G):
        model = nnx.merge(self.graphdef, state.params)
        G, V = self.num_tokens, model.cfg.vocab_size
        width = min(tokens_BxW.shape[1], model.cfg.max_len)
        cols_1xW = jnp.arange(width)[None, :]
        ends_B = jnp.minimum(state.ends_B, width)
        masked_BxW = jnp.where(cols_1xW < ends_B[:, None], self.mask_id, self.pad_id)
        inputs_BxW = jnp.where(cols_1xW < lengths_B[:, None], tokens_BxW[:, :width], masked_BxW)
        positions_BxG = lengths_B[:, None] + jnp.arange(G, dtype=jnp.int32)[None, :]
        logits_BxGxV = self._logits_at(
            model, state, inputs_BxW, jnp.minimum(jnp.maximum(ends_B, lengths_B), width),
            positions_BxG,
        )  # fmt: skip
        q_BxGxV = verify.distribution(logits_BxGxV, state.sampling)
        # At the target's end: EOS (the pad token without one); after it: the pad token.
        fixed_BxG = jnp.where(
            (positions_BxG == ends_B[:, None]) & (state.eos_id >= 0), state.eos_id, self.pad_id
        )
        beyond_BxGx1 = (positions_BxG >= ends_B[:, None])[..., None]
        q_BxGxV = jnp.where(beyond_BxGx1, jax.nn.one_hot(fixed_BxG, V), q_BxGxV)
        return verify.draw(rngs_G[0], q_BxGxV, verify.is_greedy(state.sampling)), q_BxGxV, state

    def commit(self, state: _CMLMState, lengths_B, count_B, target_logits_BxG1xV):
        return state

    @staticmethod
    def _logits_at(model, state: _CMLMState, inputs_BxW, ends_B, positions_BxG):
        """The draft's logits [B, G, V] at `positions_BxG` of `inputs_BxW` (real up to ends_B).

        An encoder-decoder reads its memory and runs the decoder over the S = W - P + 2 columns
        from each row's SEP (P: the prompt width), which hold every target slot: a row's target
        has at most max_len + 1 - P tokens (speculative_generate's bound), SEP one more.
        """
        W = inputs_BxW.shape[1]
        if state.memory is None:
            logits_BxWxV, _ = model(
                inputs_BxW, lengths_B=ends_B, prefix_lengths_B=state.prompt_lengths_B
            )
            columns_BxG = positions_BxG
        else:
            S = min(W, W - state.memory.key_positions_BxP.shape[1] + 2)
            starts_B = state.prompt_lengths_B - 1
            # Columns past W are padding (beyond ends_B): clipped, they stay inside the row.
            columns_BxS = jnp.minimum(
                starts_B[:, None] + jnp.arange(S, dtype=jnp.int32)[None], W - 1
            )
            logits_BxWxV = model.decoder_logits(
                state.memory,
                jnp.take_along_axis(inputs_BxW, columns_BxS, axis=1),
                columns_BxS,
                ends_B - starts_B,
                state.prompt_lengths_B,
            )
            columns_BxG = positions_BxG - starts_B[:, None]
        last = logits_BxWxV.shape[1] - 1
        return jnp.take_along_axis(logits_BxWxV, jnp.minimum(columns_BxG, last)[..., None], axis=1)


class _JacobiState(NamedTuple):
    guesses_BxG: jax.Array
    sampling: Any


@dataclasses.dataclass(frozen=True)
class JacobiDraft:
    """No draft model: the guesses are the target's own greedy predictions from its previous
    pass, so each round is one Jacobi iteration (Santilli et al. 2023) of a sliding block."""

    num_tokens: int
    vocab_size: int
    pad_id: int

    def start(
        self, params, prompts_BxP, prompt_lengths_B, target_lengths_B, sampling, eos_id, width
    ):
        guesses_BxG = jnp.full((prompts_BxP.shape[0], self.num_tokens), self.pad_id, jnp.int32)
        return _JacobiState(guesses_BxG, sampling)

    def propose(self, state: _JacobiState, tokens_BxW, lengths_B, rngs_G):
        return state.guesses_BxG, jax.nn.one_hot(state.guesses_BxG, self.vocab_size), state

    def commit(self, state: _JacobiState, lengths_B, count_B, target_logits_BxG1xV):
        # The pass predicted positions n .. n + G; the block now starts at n + count.
        G = self.num_tokens
        predicted_BxG1 = jnp.argmax(target_logits_BxG1xV, axis=-1).astype(jnp.int32)
        at_BxG = jnp.minimum(count_B[:, None] + jnp.arange(G)[None, :], G)
        return state._replace(guesses_BxG=jnp.take_along_axis(predicted_BxG1, at_BxG, axis=1))


@dataclasses.dataclass(frozen=True)
class NgramDraft:
    """No draft model: the G tokens that followed the latest earlier occurrence of the row's last
    `ngram_size` tokens, in the prompt or the text generated so far (prompt lookup decoding;
    vLLM's n-gram speculator). Where that occurrence overlaps the end of the row, the repeat
    continues with the same period. Rows without a match propose their last token again.

    The draft is deterministic (one-hot q), so verification keeps sampling exact as well.
    """

    num_tokens: int
    vocab_size: int
    ngram_size: int

    def start(
        self, params, prompts_BxP, prompt_lengths_B, target_lengths_B, sampling, eos_id, width
    ):
        return ()

    def propose(self, state, tokens_BxW, lengths_B, rngs_G):
        G, n = self.num_tokens, self.ngram_size
        W = tokens_BxW.shape[1]
        L_Bx1 = lengths_B[:, None]
        at_Bxn = jnp.maximum(L_Bx1 - n + jnp.arange(n)[None, :], 0)
        ngram_Bxn = jnp.take_along_axis(tokens_BxW, at_Bxn, axis=1)
        # An earlier start j matches if tokens j .. j + n - 1 equal the last n and a committed
        # token follows them (j + n < L).
        starts_1xW = jnp.arange(W)[None, :]
        matches_BxW = starts_1xW + n < L_Bx1
        for i in range(n):
            shifted_BxW = jnp.pad(tokens_BxW[:, i:], ((0, 0), (0, i)))
            matches_BxW = matches_BxW & (shifted_BxW == ngram_Bxn[:, i : i + 1])
        latest_Bx1 = jnp.max(jnp.where(matches_BxW, starts_1xW, -1), axis=1, keepdims=True)
        period_Bx1 = jnp.where(latest_Bx1 >= 0, L_Bx1 - n - latest_Bx1, 1)
        sources_BxG = L_Bx1 - period_Bx1 + jnp.arange(G)[None, :] % period_Bx1
        drafts_BxG = jnp.take_along_axis(tokens_BxW, sources_BxG, axis=1)
        return drafts_BxG, jax.nn.one_hot(drafts_BxG, self.vocab_size), state

    def commit(self, state, lengths_B, count_B, target_logits_BxG1xV):
        return state
