"""Diffusion scores the tokens AR scores (issue #32): a row ending with EOS and a window cut
from a longer text without EOS, in the diffusion loss and the likelihood evaluator
(model/diffusion.py `whole_sequence`)."""

import jax
import numpy as np
import pytest

from data import batching, vocab
from evaluation import decoders, likelihood, scoring
from experiments import tiny
from model import diffusion, make_decoder
from objectives.common import length_loss
from objectives.diffusion import diffusion_loss
from plan import make_plan
from tests.conftest import make_tiny_config

SEQ_LEN = 12


def _batch() -> dict[str, np.ndarray]:
    """Row 0: 5 tokens then EOS; row 1: a window of SEQ_LEN tokens, no EOS (as TfdsTextTask
    builds them: BOS, then the text)."""
    rng = np.random.default_rng(0)
    texts = [rng.integers(vocab.FIRST_SYMBOL, 23, n) for n in (5, SEQ_LEN)]
    target_BxM, target_lengths_B = batching.pad_rows(texts)
    seq_BxS, prefix_B, lengths_B = batching.assemble(
        np.zeros((2, 0), np.int32), np.zeros(2, np.int32), target_BxM, target_lengths_B,
        seq_len=SEQ_LEN, with_sep=False, with_eos_B=np.array([True, False]),
    )  # fmt: skip
    return batching.make_batch(seq_BxS, prefix_B, lengths_B, np.zeros(2, np.int32), lengths_B)


def _diffusion_model(length_head: bool = True):
    cfg = make_tiny_config(attention_mask_kind="full", length_head=length_head, max_len=SEQ_LEN + 1)
    return make_decoder(cfg, seed=1)


def test_the_whole_sequence_holds_each_token_ar_scores_and_stops_before_an_eos():
    batch = _batch()
    tokens, ends, with_eos = diffusion.whole_sequence(
        batch["inputs"], batch["targets"], batch["lengths"], vocab.EOS
    )
    assert tokens.shape == (2, SEQ_LEN + 1)
    np.testing.assert_array_equal(with_eos, [True, False])
    # The EOS row: BOS and its 5 tokens (the EOS is the length head's); the window: all of it.
    np.testing.assert_array_equal(ends, [6, SEQ_LEN + 1])
    np.testing.assert_array_equal(tokens[1, 1:], batch["targets"][1])


@pytest.mark.slow  # 3-6 s on the 2-core CPU: `make test` stays within 3 minutes.
def test_ar_and_diffusion_score_the_same_tokens_with_and_without_eos():
    batch = _batch()
    ar = make_decoder(make_tiny_config(attention_mask_kind="causal", max_len=SEQ_LEN), seed=2)
    _, ar_tokens = likelihood.ar_nats(ar, batch)
    _, diffusion_tokens = likelihood.diffusion_nats(_diffusion_model(), batch, jax.random.key(0), 4)
    np.testing.assert_array_equal(ar_tokens, [6, SEQ_LEN])  # 5 tokens + EOS; the window's 12.
    np.testing.assert_array_equal(diffusion_tokens, ar_tokens)
    # A block model (no length head) scores the EOS as its span's last token: the same count.
    block = make_tiny_config(attention_mask_kind="block_causal", block_size=4, max_len=SEQ_LEN + 1)
    _, block_tokens = likelihood.diffusion_nats(
        make_decoder(block, seed=1), batch, jax.random.key(0), 4
    )
    np.testing.assert_array_equal(block_tokens, ar_tokens)


def test_a_block_models_span_takes_its_eos_and_it_has_no_length_head():
    batch = _batch()
    tokens, ends, _ = diffusion.whole_sequence(
        batch["inputs"], batch["targets"], batch["lengths"], vocab.EOS, eos_in_span=True
    )
    np.testing.assert_array_equal(ends, [7, SEQ_LEN + 1])  # BOS, 5 tokens, EOS; the window.
    assert tokens[0, 6] == vocab.EOS
    config = tiny.get_config()
    config.variants.full.train = {"objective": "diffusion"}
    config.variants.full.model = {
        "attention_mask_kind": "block_causal", "block_size": 2, "length_head": True
    }  # fmt: skip
    with pytest.raises(ValueError, match="set model.length_head=False"):
        make_plan(config, "full")


@pytest.mark.slow
def test_the_windows_last_token_is_scored_and_only_an_eos_row_has_a_length_term():
    model, batch = _diffusion_model(), _batch()
    changed = {k: v.copy() for k, v in batch.items()}
    last = SEQ_LEN - 1
    changed["targets"][1, last] = vocab.FIRST_SYMBOL + (changed["targets"][1, last] + 1) % 5
    key = jax.random.key(3)
    nats, _ = likelihood.diffusion_nats(model, batch, key, 8)
    nats_changed, _ = likelihood.diffusion_nats(model, changed, key, 8)
    assert nats_changed[0] == nats[0] and nats_changed[1] != nats[1]
    loss, count = diffusion_loss(model, batch, key, None, counts=True)
    loss_changed, _ = diffusion_loss(model, changed, key, None, counts=True)
    assert int(count) == 5 + SEQ_LEN and float(loss_changed) != float(loss)
    # Without a length head the EOS row is scored given its length: one token fewer.
    _, given = likelihood.diffusion_nats(_diffusion_model(False), batch, key, 4)
    np.testing.assert_array_equal(given, [5, SEQ_LEN])


def test_a_diffusion_model_has_a_position_for_the_windows_last_token():
    config = tiny.get_config()
    config.data.update(task="random", num_symbols=8, min_len=3, max_len=5)
    config.variants.full.train = {"objective": "diffusion"}
    seq_len = make_plan(config, "causal").model.max_len  # The task's: AR reads seq_len tokens.
    assert make_plan(config, "full").model.max_len == seq_len + 1
    config.model.max_len = seq_len  # One short: a full row's last token would embed as NaN.
    with pytest.raises(ValueError, match=r"one more for train.objective='diffusion'.*>= "):
        make_plan(config, "full")


@pytest.mark.slow  # 3-6 s on the 2-core CPU: `make test` stays within 3 minutes.
def test_the_length_head_learns_only_from_rows_that_end():
    model, batch = _diffusion_model(), _batch()
    logits = model.length_logits(batch["inputs"], batch["prefix_lengths"])
    row0 = -jax.nn.log_softmax(logits[0])[batch["lengths"][0] - batch["prefix_lengths"][0]]
    np.testing.assert_allclose(float(length_loss(model, batch)), float(row0), rtol=1e-6)


@pytest.mark.slow
def test_a_diffusion_sampler_given_the_oracle_length_writes_what_each_reference_holds():
    batch = _batch()
    refs = scoring.references(batch)  # 5 tokens + EOS; the window's 12 tokens, no EOS.
    assert [len(r) for r in refs] == [6, SEQ_LEN] and refs[1][-1] != vocab.EOS
    prompts = scoring.prompts_of(batch, 1, max(len(r) for r in refs))
    np.testing.assert_array_equal(prompts.target_lengths_B, [5, SEQ_LEN])
    judge = make_decoder(make_tiny_config(attention_mask_kind="causal", max_len=SEQ_LEN), seed=2)
    models = decoders.Models(_diffusion_model(), judge)
    for decoder in ("diffusion_t2", "diffusion_conf_t8"):
        spec = decoders.lookup([decoder])[0]
        out = spec.decode(models, prompts)
        generated = scoring._continuations(out, prompts)
        assert [len(g) for g in generated] == [6, SEQ_LEN]
        assert generated[0][-1] == vocab.EOS and vocab.EOS not in generated[1]
        assert vocab.MASK not in np.concatenate(generated)
        # The judge scores every sampled token of the window, its 12th too.
        rows = spec.statistics(out, generated, models, prompts)
        np.testing.assert_array_equal(rows["nll_count"], [5, SEQ_LEN])
