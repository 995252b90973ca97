"""Mask-predict and masked-diffusion sampling on an encoder-decoder run the encoder once per call
(model/nar.py, model/diffusion_sampling.py, `EncoderDecoder.encode_prompt`): the same tokens as
re-running the whole model every pass, with the encoder traced once, outside the refinement
loop, and the length head reading that pass."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from data import vocab
from model import (
    diffusion_generate,
    drafts,
    generate,
    make_decoder,
    mask_predict,
    speculative_generate,
)
from model.ctc import ctc_generate
from model.encoder_decoder import EncoderDecoder
from model.sampling import SamplingParams
from tests.conftest import make_tiny_config


def _model_and_prompts(cross_kv_cache: bool = True, source_copy: bool = False):
    cfg = make_tiny_config(
        architecture="encoder_decoder",
        attention_mask_kind="full",
        length_head=True,
        max_len=20,
        cross_kv_cache=cross_kv_cache,
        source_copy_id=vocab.MASK if source_copy else -1,
    )
    prompt_lengths = np.array([6, 3, 5, 2])
    prompts = np.random.default_rng(1).integers(vocab.FIRST_SYMBOL, cfg.vocab_size, (4, 6))
    prompts = np.where(np.arange(6) < prompt_lengths[:, None], prompts, vocab.PAD)
    return make_decoder(cfg, seed=3), prompts.astype(np.int32), prompt_lengths


@pytest.mark.slow
@pytest.mark.parametrize(
    "cross_kv_cache, source_copy", [(True, False), (False, False), (True, True)]
)
def test_encoding_once_decodes_like_re_running_the_whole_model_every_pass(
    cross_kv_cache, source_copy
):
    # With source_copy (GLAT's input), the copy reads the source from the encoder's memory.
    model, prompts, prompt_lengths = _model_and_prompts(cross_kv_cache, source_copy)
    kwargs = dict(mask_id=vocab.MASK, eos_id=vocab.EOS, max_target_len=9)
    for K in (1, 2, 4):
        for lengths, beam in ((np.array([4, 9, 1, 5]), 0), (None, 3)):
            once, every_pass = (
                mask_predict(
                    model,
                    prompts,
                    prompt_lengths,
                    lengths,
                    num_iterations=K,
                    use_cache=use_cache,
                    **(dict(length_beam=beam) if beam else {}),
                    **kwargs,
                )
                for use_cache in (None, False)
            )
            np.testing.assert_array_equal(once.tokens_BxL, every_pass.tokens_BxL)
            np.testing.assert_array_equal(once.lengths_B, every_pass.lengths_B)


@pytest.fixture
def encoder_traces(monkeypatch) -> list:
    """The input shape of each trace of `EncoderDecoder.encode`: one encoder pass in the
    compiled program per call (or, inside a loop body, one per pass)."""
    traces = []
    original = EncoderDecoder.encode

    def counted(self, *args):
        traces.append(args[0].shape)
        return original(self, *args)

    monkeypatch.setattr(EncoderDecoder, "encode", counted)
    return traces


def test_the_encoder_is_traced_once_outside_the_refinement_loop(encoder_traces):
    # Re-running the model every pass traces it in the first pass, the loop body and the length
    # head; encoding once traces it once.
    traces = encoder_traces
    model, prompts, prompt_lengths = _model_and_prompts()
    kwargs = dict(num_iterations=3, mask_id=vocab.MASK, max_target_len=8, length_beam=2)
    mask_predict(model, prompts, prompt_lengths, None, use_cache=False, **kwargs)
    assert len(traces) == 3
    traces.clear()
    mask_predict(model, prompts, prompt_lengths, None, **kwargs)
    assert traces == [(4, 6, model.cfg.d_model)]  # The prompts alone, not prompt + target.


@pytest.mark.slow
@pytest.mark.parametrize("strategy, temperature", [("ancestral", 1.0), ("confidence", 0.0)])
def test_diffusion_sampling_encodes_once_like_re_running_the_whole_model_every_step(
    strategy, temperature
):
    model, prompts, prompt_lengths = _model_and_prompts()
    kwargs = dict(
        mask_id=vocab.MASK, eos_id=vocab.EOS, max_target_len=9, strategy=strategy,
        temperature=temperature, rng=jax.random.key(5),
    )  # fmt: skip
    for T in (1, 4):
        for lengths in (np.array([4, 9, 1, 5]), None):  # Given, and the length head's.
            once, every_step = (
                diffusion_generate(
                    model,
                    prompts,
                    prompt_lengths,
                    lengths,
                    num_steps=T,
                    use_cache=use_cache,
                    **kwargs,
                )  # fmt: skip
                for use_cache in (None, False)
            )
            np.testing.assert_array_equal(once.tokens_BxL, every_step.tokens_BxL)
            np.testing.assert_array_equal(once.lengths_B, every_step.lengths_B)
            np.testing.assert_array_equal(once.calls_per_block_B, every_step.calls_per_block_B)
    # The length head's likeliest length, as mask-predict's length beam of 1 reads it.
    predicted = diffusion_generate(model, prompts, prompt_lengths, None, num_steps=2, **kwargs)
    beam1 = mask_predict(
        model, prompts, prompt_lengths, None, num_iterations=1, length_beam=1,
        mask_id=vocab.MASK, eos_id=vocab.EOS, max_target_len=9,
    )  # fmt: skip
    np.testing.assert_array_equal(predicted.lengths_B, beam1.lengths_B)


@pytest.mark.slow
def test_diffusion_sampling_traces_the_encoder_once(encoder_traces):
    model, prompts, prompt_lengths = _model_and_prompts()
    diffusion_generate(
        model, prompts, prompt_lengths, None, num_steps=3, mask_id=vocab.MASK, max_target_len=8
    )
    assert encoder_traces == [(4, 6, model.cfg.d_model)]


@pytest.mark.slow  # 3-6 s on the 2-core CPU: `make test` stays within 3 minutes.
def test_an_encoder_decoder_cmlm_draft_proposes_what_re_running_it_every_round_does():
    # The draft's distributions over its G tokens, with the prompts encoded once in `start` and
    # the decoder run over the target slots alone, against the whole model re-run (memory
    # None), at several committed lengths. The last row, a 2-token prompt and a 15-token target
    # in a 6-token prompt width (6 + 15 = max_len + 1), has the widest target region the
    # draft's pass must hold.
    model, prompts, prompt_lengths = _model_and_prompts()
    graphdef, params = nnx.split(model)
    draft = drafts.CMLMDraft(graphdef, 3, vocab.MASK, vocab.PAD)
    W = 6 + 15 + 3 + 1  # speculative_generate's buffer: prompt, new tokens, a round's slack.
    start = jax.jit(draft.start, static_argnums=6)
    state = start(
        params, jnp.asarray(prompts), jnp.asarray(prompt_lengths),
        jnp.asarray([9, 4, 1, 15]), SamplingParams.checked(1.0, 0, 1.0), jnp.int32(vocab.EOS), W,
    )  # fmt: skip
    assert state.memory is not None
    rng = np.random.default_rng(2)
    tokens = rng.integers(vocab.FIRST_SYMBOL, model.cfg.vocab_size, (4, W)).astype(np.int32)
    tokens[:, :6] = prompts
    propose = jax.jit(draft.propose)
    rngs = jax.random.split(jax.random.key(0), 3)
    for committed in (0, 2, 7, 14):
        lengths = jnp.asarray(prompt_lengths + committed, jnp.int32)
        _, q_once, _ = propose(state, jnp.asarray(tokens), lengths, rngs)
        _, q_every, _ = propose(state._replace(memory=None), jnp.asarray(tokens), lengths, rngs)
        np.testing.assert_allclose(q_once, q_every, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_speculative_decoding_with_an_encoder_decoder_cmlm_draft_equals_greedy():
    draft, prompts, prompt_lengths = _model_and_prompts()
    target = make_decoder(
        make_tiny_config(architecture="encoder_decoder", attention_mask_kind="causal", max_len=20),
        seed=4,
    )
    greedy = generate(target, prompts, prompt_lengths, max_new_tokens=15, eos_id=vocab.EOS)
    out = speculative_generate(
        target, draft, prompts, prompt_lengths, num_draft_tokens=3, max_new_tokens=15,
        eos_id=vocab.EOS, draft_mask_id=vocab.MASK, target_lengths_B=np.array([15, 4, 9, 1]),
    )  # fmt: skip
    np.testing.assert_array_equal(out.tokens_BxL, greedy.tokens_BxL)


@pytest.mark.slow
@pytest.mark.parametrize("source_copy", [False, True])
def test_ctc_on_an_encoder_decoder_decodes_split_as_it_trains_like_the_whole_rows(source_copy):
    # The encoder over the prompts alone and the decoder over `SEP canvas` alone, against both
    # stacks over [prompt, canvas] rows: the same tokens.
    model, prompts, _ = _model_and_prompts(source_copy=source_copy)
    prompt_lengths = np.array([6, 3, 5, 4])  # `BOS source SEP`: a source token or more.
    kwargs = dict(ratio=2, max_new_tokens=12, blank_id=vocab.MASK, eos_id=vocab.EOS)
    split, rows = (
        ctc_generate(model, prompts, prompt_lengths, split=split, **kwargs)
        for split in (None, False)
    )
    np.testing.assert_array_equal(split.tokens_BxL, rows.tokens_BxL)
    np.testing.assert_array_equal(split.lengths_B, rows.lengths_B)
