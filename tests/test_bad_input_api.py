"""The bad-input battery of the Python API: every case raises a ValueError (on the host, before
any tracing) that names the argument; command-line cases are in test_bad_input.py."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import make_tiny_config

from data import vocab
from model import generate, make_decoder, mask_predict


@pytest.fixture(scope="module")
def model():
    return make_decoder(make_tiny_config())  # vocab 23, max_len 48.


BAD_GENERATE = {
    "NaN temperature": (dict(temperature=float("nan")), "temperature"),
    "infinite temperature": (dict(temperature=float("inf")), "temperature"),
    "fractional top_k": (dict(top_k=2.5), "top_k"),
    "NaN top_p": (dict(top_p=float("nan")), "top_p"),
    "fractional prompt lengths": (dict(prompt_lengths=[3.0, 2.5]), "prompt_lengths"),
    "an empty batch": (dict(prompts=np.zeros((0, 5), np.int32)), "at least one row"),
    "an int for rng": (dict(rng=0), "rng"),
    "a batch of keys for rng": (dict(rng=jax.random.split(jax.random.key(0), 2)), "rng"),
    "a bool for max_new_tokens": (dict(max_new_tokens=True), "max_new_tokens"),
    "a float eos_id": (dict(eos_id=2.0), "eos_id"),
}


@pytest.mark.parametrize("case", BAD_GENERATE)
def test_generate_refuses_bad_arguments_on_the_host(model, case):
    change, message = BAD_GENERATE[case]
    args = dict(prompts=np.ones((2, 5), np.int32), prompt_lengths=None, max_new_tokens=4) | change
    with pytest.raises(ValueError, match=message):
        generate(model, args.pop("prompts"), args.pop("prompt_lengths"), **args)


def test_generate_takes_legacy_keys_too(model):
    out = generate(model, np.ones((2, 5), np.int32), max_new_tokens=2, rng=jax.random.PRNGKey(0))
    assert out.tokens_BxL.shape == (2, 7)


def test_mask_predict_refuses_fractional_target_lengths():
    cmlm = make_decoder(make_tiny_config(attention_mask_kind="prefix_full"))
    with pytest.raises(ValueError, match="target_lengths must be ints"):
        mask_predict(cmlm, np.ones((2, 3), np.int32), [3, 3], [2.0, 1.5], num_iterations=2,
                     mask_id=vocab.MASK)  # fmt: skip


@pytest.mark.parametrize("token", [23, -1])
def test_the_decoder_called_eagerly_refuses_ids_outside_the_vocabulary(model, token):
    tokens = jnp.asarray([[1, 5, token]])
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 23\)"):
        model(tokens)
