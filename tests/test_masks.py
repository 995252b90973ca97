"""model/masks.py: each registered mask kind's builder agrees with its record's properties (an
exact cache sees no later key, a cached prompt never sees a target, what a target sees of later
targets, the block size used only where the record says so), and the table's lookups."""

import jax.numpy as jnp
import numpy as np
import pytest

from model import masks
from model.masks import EMPTY, MASK_KINDS, MaskContext

S = 10
PREFIX_B = np.array([3, 4])
LENGTH_B = np.array([10, 8])  # Row 1 ends in two padding slots (EMPTY keys).
BUILT_IN = tuple(MASK_KINDS.values())


def _allowed(kind, block_size: int = 2, prefix_B=PREFIX_B) -> np.ndarray:
    """allowed [B, T, S] over one row of S positions, queries = keys, padding EMPTY."""
    positions_BxS = np.broadcast_to(np.arange(S), (2, S))
    keys_BxS = np.where(positions_BxS < LENGTH_B[:, None], positions_BxS, EMPTY)
    context = MaskContext(
        jnp.asarray(positions_BxS, jnp.int32),
        jnp.asarray(keys_BxS, jnp.int32),
        jnp.asarray(prefix_B, jnp.int32),
        block_size=block_size,
    )
    return np.asarray(kind.build(context))


def _pairs(b: int):
    """(query, key) positions of row b's real tokens, as [T, S] grids."""
    q_TxS, k_TxS = np.meshgrid(np.arange(S), np.arange(S), indexing="ij")
    real_TxS = (q_TxS < LENGTH_B[b]) & (k_TxS < LENGTH_B[b])
    return q_TxS, k_TxS, real_TxS


@pytest.mark.parametrize("kind", BUILT_IN, ids=lambda kind: kind.id)
def test_every_kind_hides_padding_and_lets_a_real_query_see_itself(kind):
    allowed_BxTxS = _allowed(kind)
    assert allowed_BxTxS.shape == (2, S, S) and allowed_BxTxS.dtype == bool
    assert not allowed_BxTxS[1, :, LENGTH_B[1] :].any()  # EMPTY keys are never visible.
    for b in range(2):
        assert np.diagonal(allowed_BxTxS[b])[: LENGTH_B[b]].all()


@pytest.mark.parametrize("kind", BUILT_IN, ids=lambda kind: kind.id)
def test_the_builder_agrees_with_the_records_properties(kind):
    allowed_BxTxS = _allowed(kind)
    for b, prefix in enumerate(PREFIX_B):
        allowed_TxS = allowed_BxTxS[b]
        q_TxS, k_TxS, real_TxS = _pairs(b)
        later_key = real_TxS & (k_TxS > q_TxS)
        if kind.exact_cache:  # A valid next-token model: from the prompt's last token on (the
            # positions that predict targets), no query sees a key after it. (A prefix-LM's
            # prompt sees itself whole: its keys are written once, before any target.)
            assert not allowed_TxS[later_key & (q_TxS >= prefix - 1)].any()
        if kind.caches_prompt:  # The prompt's keys never depend on the targets.
            assert not allowed_TxS[real_TxS & (q_TxS < prefix) & (k_TxS >= prefix)].any()
        targets = real_TxS & (q_TxS >= prefix) & (k_TxS >= prefix)
        if kind.target_view == "past":
            assert not allowed_TxS[targets & later_key].any()
        elif kind.target_view == "all":
            assert allowed_TxS[targets].all()
        else:  # "block": a target sees its own block whole, no later block.
            q_block_TxS, k_block_TxS = (q_TxS - prefix) // 2, (k_TxS - prefix) // 2
            assert allowed_TxS[targets & (k_block_TxS == q_block_TxS)].all()
            assert not allowed_TxS[targets & (k_block_TxS > q_block_TxS)].any()
            assert allowed_TxS[targets & (k_TxS < q_TxS)].all()


@pytest.mark.parametrize("kind", BUILT_IN, ids=lambda kind: kind.id)
def test_only_kinds_that_use_the_block_size_depend_on_it(kind):
    changes = not np.array_equal(_allowed(kind, block_size=2), _allowed(kind, block_size=3))
    assert changes == kind.uses_block_size
    assert kind.block_size(type("Cfg", (), {"block_size": 2})) == (
        2 if kind.uses_block_size else None
    )


# block_causal's blocks start after the prompt, so the prefix moves them whatever it reads.
@pytest.mark.parametrize(
    "kind", [k for k in BUILT_IN if not k.uses_block_size], ids=lambda kind: kind.id
)
def test_only_kinds_that_need_the_prefix_read_it_for_their_visibility(kind):
    moved = not np.array_equal(_allowed(kind), _allowed(kind, prefix_B=np.array([5, 2])))
    assert moved == kind.needs_prefix


def test_the_record_refuses_an_exact_cache_that_sees_later_targets_and_an_unknown_view():
    with pytest.raises(ValueError, match="an exact cache needs target_view='past'"):
        masks.MaskKind(
            "x", "x", masks._full, exact_cache=True, caches_prompt=False, target_view="all"
        )
    with pytest.raises(ValueError, match="target_view must be one of"):
        masks.MaskKind(
            "x", "x", masks._full, exact_cache=False, caches_prompt=False, target_view="some"
        )


def test_lookups_name_the_registered_kinds():
    assert masks.mask_kind("causal") is MASK_KINDS["causal"]
    with pytest.raises(ValueError) as error:
        masks.mask_kind("casual")
    assert "\n" not in str(error.value) and "'causal'" in str(error.value)
    assert masks.kinds_where(lambda kind: kind.exact_cache) == ("causal", "prefix")
    assert {kind.expected_leakage for kind in BUILT_IN} == {
        "exactly 0.0",
        "exactly 0.0 across blocks, by design inside one",
        "a leak: every target is visible",
    }


def test_block_ids_put_the_prompt_at_minus_one_and_padding_after_every_block():
    positions_BxS = jnp.asarray([[0, 1, 2, 3, 4, 5, EMPTY]], jnp.int32)
    blocks = masks.block_ids(positions_BxS, jnp.asarray([2], jnp.int32), block_size=2)
    np.testing.assert_array_equal(np.asarray(blocks), [[-1, -1, 0, 0, 1, 1, EMPTY]])
