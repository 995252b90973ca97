"""model/checks.py: the host-side checks every decoder shares refuse bad input in one sentence
naming the argument, and resolve the defaults (an rng, prompt lengths, the prompt cache)."""

import jax
import numpy as np
import pytest
from conftest import make_tiny_config

from model import checks


def _one_line(error) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("value", [-1, 23, True, 2.0, "3"])
def test_a_token_id_outside_the_vocabulary_is_refused(value):
    with pytest.raises(ValueError) as error:
        checks.check_token_id(value, "eos_id", 23)
    assert _one_line(error).startswith("eos_id must be a token id in [0, 23), got")


def test_token_ids_come_back_as_ints_and_none_only_where_optional():
    assert checks.check_token_id(np.int64(4), "pad_id", 23) == 4
    assert checks.check_token_id(None, "eos_id", 23, optional=True) is None
    with pytest.raises(ValueError, match=r"mask_id must be a token id in \[0, 23\), got None"):
        checks.check_token_id(None, "mask_id", 23)
    cfg = make_tiny_config()
    assert checks.check_fill_ids(cfg, 4, 0, None) == (4, 0, None)
    with pytest.raises(ValueError, match="pad_id must be"):
        checks.check_fill_ids(cfg, 4, 99, 2)


def kinds(kind) -> bool:
    return kind.caches_prompt


def test_the_prompt_cache_defaults_to_where_the_mask_allows_it():
    for name, cached in [("prefix_full", True), ("full", False), ("causal", True)]:
        cfg = make_tiny_config(attention_mask_kind=name)
        assert checks.check_prompt_cache(cfg, None, "decode", kinds, "pass") is cached
        assert checks.check_prompt_cache(cfg, False, "decode", kinds, "pass") is False
    with pytest.raises(ValueError) as error:
        checks.check_prompt_cache(
            make_tiny_config(attention_mask_kind="full"), True, "decode", kinds, "step"
        )
    assert _one_line(error).startswith("decode(use_cache=True) needs a model whose prompt")
    assert "'prefix_full'" in str(error.value) and str(error.value).endswith("each step")


def test_only_an_exact_cache_decodes_with_cached_keys():
    checks.check_cached_decoding(make_tiny_config(attention_mask_kind="prefix"), "target")
    with pytest.raises(ValueError) as error:
        checks.check_cached_decoding(make_tiny_config(attention_mask_kind="full"), "draft")
    assert _one_line(error).startswith("The draft must be an AR model (causal or prefix mask)")


def test_rng_defaults_to_key_0_and_refuses_anything_but_one_key():
    assert (
        jax.random.key_data(checks.check_rng(None)).tolist()
        == jax.random.key_data(jax.random.key(0)).tolist()
    )
    legacy = jax.random.PRNGKey(3)
    assert checks.check_rng(legacy) is legacy
    for bad in (jax.random.split(jax.random.key(0), 2), 3, np.zeros(3, np.uint32)):
        with pytest.raises(ValueError, match="rng must be one key"):
            checks.check_rng(bad)


def test_prompts_are_checked_and_their_lengths_default_to_the_width():
    cfg = make_tiny_config(max_len=8)
    prompts, lengths = checks.check_prompts(cfg, np.array([[5, 6, 7], [8, 0, 0]]), [3, 1])
    assert prompts.dtype == lengths.dtype == np.int32 and lengths.tolist() == [3, 1]
    assert checks.check_prompts(cfg, np.array([[5, 6]]))[1].tolist() == [2]
    bad = [
        ((np.array([5, 6]), None), "prompts must be a 2-D int array"),
        ((np.zeros((0, 3), int), None), "at least one row and one token"),
        ((np.array([[5, 6]]), [3]), r"prompt_lengths must be 1 ints in \[1, 2\]"),
        ((np.array([[5, 6]]), [1.0]), "prompt_lengths must be ints"),
        ((np.ones((1, 9), int), None), "Prompts have 9 tokens but the model's max_len is 8"),
        ((np.array([[5, 99]]), None), r"Prompt token ids must be in \[0, 23\)"),
    ]
    for (prompts, lengths), message in bad:
        with pytest.raises(ValueError, match=message):
            checks.check_prompts(cfg, prompts, lengths)
    # Padding after a row's length is not checked: it is never read.
    checks.check_prompts(cfg, np.array([[5, 99]]), [1])
