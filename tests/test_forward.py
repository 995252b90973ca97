"""evaluation/forward.py: teacher-forced logits are the model's own call, and honest logits are
what position t computes from x[:t+1] alone: equal to the teacher-forced ones under a mask whose
cache is exact, different under a full mask, and blind to every token after t."""

import numpy as np
import pytest
from conftest import make_tiny_config

from evaluation import forward
from model import make_decoder

B, T, V = 3, 9, 23
LENGTHS = np.array([9, 6, 4])
PREFIXES = np.array([3, 2, 1])


def _tokens(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(5, V, (B, T)).astype(np.int32)


def _model(kind: str):
    return make_decoder(make_tiny_config(attention_mask_kind=kind, max_len=16), seed=0)


def _real(logits_BxTxV, start_B=0):
    """The positions with a real token from `start_B` on (padding's logits are not compared)."""
    position_1xT = np.arange(T)[None, :]
    return logits_BxTxV[
        (position_1xT >= np.reshape(start_B, (-1, 1))) & (position_1xT < LENGTHS[:, None])
    ]


@pytest.mark.slow
def test_teacher_forced_logits_are_the_models_own_call():
    model, tokens = _model("causal"), _tokens()
    expected, _ = model(tokens, lengths_B=LENGTHS, prefix_lengths_B=PREFIXES)
    found = forward.logits(model, tokens, LENGTHS, PREFIXES)
    assert found.shape == (B, T, V) and found.dtype == np.float32
    np.testing.assert_allclose(_real(found), _real(np.asarray(expected)), atol=1e-5)


def test_honest_logits_equal_teacher_forced_under_the_causal_mask():
    model, tokens = _model("causal"), _tokens()
    honest = forward.honest_logits(model, tokens, LENGTHS, PREFIXES)
    teacher_forced = forward.logits(model, tokens, LENGTHS, PREFIXES)
    np.testing.assert_allclose(_real(honest), _real(teacher_forced), atol=1e-5)


def test_under_the_prefix_mask_they_are_equal_from_the_prompts_last_token_on():
    """The prompt sees itself whole when teacher-forced, but the predictions of the targets (from
    position prefix_len - 1 on, where the loss is) see the same tokens either way."""
    model, tokens = _model("prefix"), _tokens()
    honest = forward.honest_logits(model, tokens, LENGTHS, PREFIXES)
    teacher_forced = forward.logits(model, tokens, LENGTHS, PREFIXES)
    targets = PREFIXES - 1
    np.testing.assert_allclose(_real(honest, targets), _real(teacher_forced, targets), atol=1e-5)
    assert np.abs(honest[0, 0] - teacher_forced[0, 0]).max() > 1e-4  # x[0] sees x[1:3] there.


def test_honest_logits_differ_under_a_full_mask_and_never_see_later_tokens():
    model, tokens = _model("full"), _tokens()
    honest = forward.honest_logits(model, tokens, LENGTHS, PREFIXES)
    teacher_forced = forward.logits(model, tokens, LENGTHS, PREFIXES)
    assert np.abs(_real(honest) - _real(teacher_forced)).max() > 1e-4
    # Changing the tokens after t changes the teacher-forced logits at t, never the honest ones.
    t = 3
    changed = tokens.copy()
    changed[:, t + 1 :] = _tokens(seed=1)[:, t + 1 :]
    honest_changed = forward.honest_logits(model, changed, LENGTHS, PREFIXES)
    np.testing.assert_allclose(honest_changed[:, : t + 1], honest[:, : t + 1], atol=1e-5)
    tf_changed = forward.logits(model, changed, LENGTHS, PREFIXES)
    assert np.abs(tf_changed[:, t] - teacher_forced[:, t]).max() > 1e-4
