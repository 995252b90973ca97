"""The mask kinds: one record per `ModelConfig.attention_mask_kind`, and the table of them.

A mask kind says which keys a query may attend to, by position (EMPTY for padding and unwritten
cache slots, so one rule serves the full forward pass, prefill and cached decoding), and what
the rest of the code needs to know about it: whether its KV cache is exact (a valid next-token
model), whether the prompt's keys can be cached once, what a target sees of later targets, and
a label. A new kind is a `MaskKind` and one `register_mask_kind` call; no other module tests a
kind's name (tests/test_extension_points.py registers one).

Shape legend: B batch, T queries, S keys.
"""

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp

# The position recorded for a key that does not exist: padding, or a cache slot not yet written.
EMPTY = jnp.iinfo(jnp.int32).max
# What a target position sees of the targets after it (`MaskKind.target_view`).
TARGET_VIEWS = {
    "past": "none: each target sees only earlier positions",
    "block": "those of its own block, and none of later blocks",
    "all": "every target",
}


@dataclasses.dataclass(frozen=True)
class MaskContext:
    """What a mask builder reads: query and key positions, and the row's prompt and blocks."""

    query_positions_BxT: jax.Array
    key_positions_BxS: jax.Array
    prefix_lengths_B: jax.Array | None
    block_size: int = 1
    # Block diffusion's one-pass training: True on the noised copy's queries and keys.
    noisy_queries_BxT: jax.Array | None = None
    noisy_keys_BxS: jax.Array | None = None

    @property
    def q_BxTx1(self) -> jax.Array:
        return self.query_positions_BxT[:, :, None]

    @property
    def k_Bx1xS(self) -> jax.Array:
        return self.key_positions_BxS[:, None, :]

    @property
    def prefix_Bx1x1(self) -> jax.Array:
        return self.prefix_lengths_B[:, None, None]


@dataclasses.dataclass(frozen=True)
class MaskKind:
    """One attention mask kind."""

    id: str  # ModelConfig.attention_mask_kind, flags, results.json.
    label: str  # For people: one phrase.
    # allowed [B, T, S]: True where a query may attend to a key (EMPTY keys must be False).
    build: Callable[[MaskContext], jax.Array]
    # A target sees only earlier positions, so teacher-forced logits are honest and a KV cache
    # is exact: a valid next-token model (AR decoders with a cache, speculative, beam search).
    exact_cache: bool
    # The prompt's keys never depend on the targets, so they can be computed once and cached
    # while the targets change (mask-predict, diffusion sampling).
    caches_prompt: bool
    target_view: str  # A key of TARGET_VIEWS: what a target sees of later targets.
    needs_prefix: bool = False  # The builder reads prefix_lengths.
    uses_block_size: bool = False  # ModelConfig.block_size means something under it.
    takes_noisy: bool = False  # The builder reads noisy_queries / noisy_keys.

    def __post_init__(self):
        if self.target_view not in TARGET_VIEWS:
            raise ValueError(
                f"Mask kind {self.id!r}: target_view must be one of {list(TARGET_VIEWS)}, "
                f"got {self.target_view!r}"
            )
        if self.exact_cache and self.target_view != "past":
            raise ValueError(f"Mask kind {self.id!r}: an exact cache needs target_view='past'")

    @property
    def expected_leakage(self) -> str:
        """What the leakage evaluator should find under teacher forcing."""
        return {
            "past": "exactly 0.0",
            "block": "exactly 0.0 across blocks, by design inside one",
            "all": "a leak: every target is visible",
        }[self.target_view]

    def block_size(self, cfg) -> int | None:
        """Tokens per block of a model `cfg` under this kind; None where one block holds all."""
        return cfg.block_size if self.uses_block_size else None


MASK_KINDS: dict[str, MaskKind] = {}


def register_mask_kind(kind: MaskKind) -> MaskKind:
    """Adds a mask kind to the table (a later kind with the same id replaces the earlier one)."""
    MASK_KINDS[kind.id] = kind
    return kind


def mask_kind(name: str) -> MaskKind:
    """The record of a mask kind id; a one-line ValueError names the registered ones."""
    if name not in MASK_KINDS:
        raise ValueError(f"attention_mask_kind must be one of {tuple(MASK_KINDS)}, got {name!r}")
    return MASK_KINDS[name]


def kinds_where(predicate: Callable[[MaskKind], bool]) -> tuple[str, ...]:
    """The ids of the registered kinds for which `predicate` holds, in table order."""
    return tuple(kind.id for kind in MASK_KINDS.values() if predicate(kind))


def block_ids(
    positions_BxT: jax.Array, prefix_lengths_B: jax.Array | None, block_size: int
) -> jax.Array:
    """Each position's block under `block_causal`: -1 for the prompt (positions before
    prefix_lengths; none when it is None), then (position - prefix_length) // block_size; EMPTY
    positions get a block after every real one."""
    start_Bx1 = 0 if prefix_lengths_B is None else prefix_lengths_B[:, None]
    block_BxT = jnp.where(
        positions_BxT < start_Bx1, -1, (positions_BxT - start_Bx1) // block_size
    ).astype(jnp.int32)
    return jnp.where(positions_BxT == EMPTY, EMPTY, block_BxT)


def _causal(ctx: MaskContext) -> jax.Array:
    return ctx.k_Bx1xS <= ctx.q_BxTx1  # EMPTY is larger than every position.


def _full(ctx: MaskContext) -> jax.Array:
    return (ctx.k_Bx1xS != EMPTY) & (ctx.q_BxTx1 >= 0)


def _prefix(ctx: MaskContext) -> jax.Array:
    return _causal(ctx) | (ctx.k_Bx1xS < ctx.prefix_Bx1x1)


def _prefix_full(ctx: MaskContext) -> jax.Array:
    # Targets see every real key; prefix queries see prefix keys only.
    return (ctx.k_Bx1xS != EMPTY) & (
        (ctx.q_BxTx1 >= ctx.prefix_Bx1x1) | (ctx.k_Bx1xS < ctx.prefix_Bx1x1)
    )


def _block_causal(ctx: MaskContext) -> jax.Array:
    """A query sees its own block and earlier ones. On [clean row, noised row] (BD3-LM's one
    training pass) a noised token sees the noised tokens of its own block and the clean tokens
    of earlier blocks; a clean token sees clean tokens as above."""
    q_block_BxTx1 = block_ids(ctx.query_positions_BxT, ctx.prefix_lengths_B, ctx.block_size)
    k_block_Bx1xS = block_ids(ctx.key_positions_BxS, ctx.prefix_lengths_B, ctx.block_size)
    q_block_BxTx1, k_block_Bx1xS = q_block_BxTx1[:, :, None], k_block_Bx1xS[:, None, :]
    allowed_BxTxS = k_block_Bx1xS <= q_block_BxTx1  # EMPTY's block follows every real one.
    if ctx.noisy_queries_BxT is None:
        return allowed_BxTxS
    q_noisy_BxTx1 = ctx.noisy_queries_BxT[:, :, None]
    k_noisy_Bx1xS = ctx.noisy_keys_BxS[:, None, :]
    noisy_view_BxTxS = jnp.where(
        k_noisy_Bx1xS, k_block_Bx1xS == q_block_BxTx1, k_block_Bx1xS < q_block_BxTx1
    )
    return jnp.where(q_noisy_BxTx1, noisy_view_BxTxS, allowed_BxTxS & ~k_noisy_Bx1xS)


register_mask_kind(
    MaskKind("causal", "causal", _causal, exact_cache=True, caches_prompt=True, target_view="past")
)
register_mask_kind(
    MaskKind("full", "full", _full, exact_cache=False, caches_prompt=False, target_view="all")
)
register_mask_kind(
    MaskKind(
        "prefix", "prefix-LM", _prefix, exact_cache=True, caches_prompt=True, target_view="past",
        needs_prefix=True,
    )
)  # fmt: skip
register_mask_kind(
    MaskKind(
        "prefix_full", "prefix, full over the targets", _prefix_full, exact_cache=False,
        caches_prompt=True, target_view="all", needs_prefix=True,
    )
)  # fmt: skip
register_mask_kind(
    MaskKind(
        "block_causal", "block-causal", _block_causal, exact_cache=False, caches_prompt=True,
        target_view="block", uses_block_size=True, takes_noisy=True,
    )
)  # fmt: skip
