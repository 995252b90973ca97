"""objectives/ (base.py's record and table, common.py's shared losses): every registered
objective's settings are TrainConfig fields that its loss takes and whose defaults are in range,
its `trains_mask` is what the plan's check refuses, and the table's lookups and refusals."""

import dataclasses
import inspect

import jax.numpy as jnp
import numpy as np
import pytest

from model.masks import MASK_KINDS, TARGET_VIEWS
from objectives.base import MODEL_KINDS, OBJECTIVES, Objective, all_settings, objective_of
from objectives.common import masked_cross_entropy, teacher_forcing_loss
from plan import base_config, make_plan
from sections import TrainConfig

RECORDS = tuple(OBJECTIVES.values())
TRAIN_FIELDS = {field.name: field.default for field in dataclasses.fields(TrainConfig)}


@pytest.mark.parametrize("objective", RECORDS, ids=lambda o: o.id)
def test_each_setting_is_a_train_config_field_that_its_loss_takes(objective):
    parameters = inspect.signature(objective.loss).parameters
    for setting in objective.settings:
        assert setting.name in TRAIN_FIELDS, setting.name
        setting.check(TRAIN_FIELDS[setting.name])  # The default is in range.
        assert all_settings()[setting.name] is setting  # TrainConfig checks it.
        if setting.keyword:
            assert setting.keyword in parameters, (objective.id, setting.keyword)


@pytest.mark.parametrize("objective", RECORDS, ids=lambda o: o.id)
def test_each_record_describes_itself_consistently(objective):
    assert objective.model_kind in MODEL_KINDS and objective.description
    if objective.target_views is not None:
        assert set(objective.target_views) <= set(TARGET_VIEWS) and objective.mask_reason
    assert objective.next_token == (objective.model_kind == "next_token")
    assert objective_of(objective.id) is objective


def _plan_error(objective_id: str, kind: str) -> str:
    """The plan's refusal of training `kind` with the objective ("" when it plans)."""
    config = base_config()
    config.data.update(task="copy", num_symbols=6, min_len=2, max_len=4)
    config.model.update(attention_mask_kind=kind, num_layers=1, d_model=16, num_heads=2, d_ff=32)
    config.train.objective = objective_id
    try:
        make_plan(config, "")
    except ValueError as error:
        return str(error)
    return ""


@pytest.mark.parametrize("objective", RECORDS, ids=lambda o: o.id)
def test_trains_mask_is_what_the_plan_refuses(objective):
    for kind in MASK_KINDS.values():
        refused = "needs model.attention_mask_kind to be one of" in _plan_error(
            objective.id, kind.id
        )
        assert refused == (not objective.trains_mask(kind)), (objective.id, kind.id)


def test_the_record_and_the_table_refuse_bad_ids_in_one_line():
    with pytest.raises(ValueError, match="model_kind must be one of"):
        Objective("x", "x", "oracle", teacher_forcing_loss)
    with pytest.raises(ValueError, match="must be an identifier"):
        Objective("two words", "x", "next_token", teacher_forcing_loss)
    with pytest.raises(ValueError) as error:
        objective_of("teacher-forcing")
    assert "\n" not in str(error.value) and "'teacher_forcing'" in str(error.value)


def test_masked_cross_entropy_scores_only_the_masked_positions():
    rng = np.random.default_rng(0)
    logits_BxTxV = jnp.asarray(rng.normal(size=(2, 4, 5)), jnp.float32)
    targets_BxT = jnp.asarray(rng.integers(0, 5, (2, 4)))
    mask_BxT = jnp.asarray([[1, 1, 0, 0], [0, 1, 1, 1]], jnp.float32)
    loss, count = masked_cross_entropy(logits_BxTxV, targets_BxT, mask_BxT)
    log_p_BxTxV = (
        np.asarray(logits_BxTxV) - np.log(np.exp(np.asarray(logits_BxTxV)).sum(-1))[..., None]
    )
    nll_BxT = -np.take_along_axis(log_p_BxTxV, np.asarray(targets_BxT)[..., None], -1)[..., 0]
    expected = (nll_BxT * np.asarray(mask_BxT)).sum() / 5
    assert count == 5 and float(loss) == pytest.approx(expected, rel=1e-5)
    other_BxT = jnp.where(mask_BxT > 0, targets_BxT, (targets_BxT + 1) % 5)  # Unmasked changed.
    assert float(masked_cross_entropy(logits_BxTxV, other_BxT, mask_BxT)[0]) == float(loss)
    assert masked_cross_entropy(logits_BxTxV, targets_BxT, 0 * mask_BxT)[0] == 0.0
