"""CTC (objectives/ctc.py, model/ctc.py): the loss equals a brute-force sum over every
alignment, the collapse merges repeats then drops blanks, the canvas copies the source
uniformly, and a tiny model trained with it decodes copy through the decoders table."""

import itertools
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import make_tiny_config
from flax import nnx

from data import vocab
from evaluation import decoders
from experiments import tiny, two_alphabets
from model import make_decoder, mask_kind
from model.ctc import _ctc_jit, canvas_rows, canvas_width, collapse, ctc_generate
from model.decoder import Decoder
from objectives import objective_of
from objectives.ctc import ctc_loss
from plan import make_plan

A, B_ = vocab.FIRST_SYMBOL, vocab.FIRST_SYMBOL + 1
BLANK = vocab.MASK


def _collapse(tokens, blank=BLANK) -> list[int]:
    out, previous = [], None
    for token in tokens:
        if token != blank and token != previous:
            out.append(token)
        previous = token
    return out


@pytest.mark.parametrize(
    "canvas, expected",
    [
        ([A, A, B_, B_], [A, B_]),
        ([A, BLANK, A, B_], [A, A, B_]),  # A blank keeps two equal tokens apart.
        ([BLANK, BLANK, BLANK, BLANK], []),
        ([A, A, A, BLANK], [A]),
        ([B_, A, BLANK, BLANK], [B_, A]),
    ],
)
def test_collapse_merges_repeats_then_drops_blanks(canvas, expected):
    tokens = jnp.asarray([canvas + [A, B_]], jnp.int32)  # Two slots past the canvas: ignored.
    valid = jnp.arange(6)[None, :] < 4
    out, count = collapse(tokens, valid, BLANK, vocab.PAD)
    assert int(count[0]) == len(expected) == len(_collapse(canvas))
    assert out[0, : len(expected)].tolist() == expected
    assert (out[0, len(expected) :] == vocab.PAD).all()


def test_the_canvas_copies_the_source_uniformly_and_is_cut_to_the_row():
    prompts = jnp.asarray([[1, 10, 11, 12, 3, 0], [1, 20, 3, 0, 0, 0]], jnp.int32)
    lengths = jnp.asarray([5, 3], jnp.int32)
    rows, canvas_len = canvas_rows(prompts, lengths, 2, 12, vocab.PAD)
    assert canvas_len.tolist() == [6, 2]
    assert rows[0].tolist() == [1, 10, 11, 12, 3, 10, 10, 11, 11, 12, 12, 0]
    assert rows[1].tolist() == [1, 20, 3, 20, 20] + [0] * 7
    rows, canvas_len = canvas_rows(prompts, lengths, 3, 9, vocab.PAD)  # 9 slots cannot hold 9.
    assert canvas_len.tolist() == [4, 3] and rows[0, 5:].tolist() == [10, 10, 10, 11]


class FixedLogits:
    """A model that returns the same logits [W, V] for every row (the loss's only input)."""

    def __init__(self, logits_WxV):
        self.logits_WxV = logits_WxV
        W, V = logits_WxV.shape
        self.cfg = SimpleNamespace(max_len=W, vocab_size=V, mask=mask_kind("prefix_full"))

    def __call__(self, rows_BxW, *, lengths_B, prefix_lengths_B, dropout_rng=None):
        return jnp.broadcast_to(self.logits_WxV, (rows_BxW.shape[0], *self.logits_WxV.shape)), None

    prompt_source = Decoder.prompt_source  # The source is in the rows.


@pytest.mark.parametrize(
    "target",
    [
        [A, B_],
        pytest.param([A, A], marks=pytest.mark.slow),
        pytest.param([B_], marks=pytest.mark.slow),
    ],
)
def test_the_loss_is_the_brute_force_sum_over_alignments(target):
    """Prompt `BOS a b SEP` (S = 2), ratio 2: 4 canvas slots, V = 7: every one of the 7^4
    canvases is enumerated, and the ones that collapse to the target are summed."""
    prompt = [vocab.BOS, A, B_, vocab.SEP]
    seq = prompt + target + [vocab.EOS]
    T = 9
    inputs = np.zeros((1, T), np.int32)
    inputs[0, : len(seq) - 1] = seq[:-1]
    batch = {
        "inputs": jnp.asarray(inputs),
        "prefix_lengths": jnp.asarray([len(prompt)], jnp.int32),
        "lengths": jnp.asarray([len(seq) - 1], jnp.int32),
    }
    logits = jax.random.normal(jax.random.key(0), (T, vocab.vocab_size(2)))
    nll, count = ctc_loss(FixedLogits(logits), batch, None, None, ratio=2)
    log_p = np.asarray(jax.nn.log_softmax(logits[len(prompt) : len(prompt) + 4]), np.float64)
    total = sum(
        np.exp(sum(log_p[j, token] for j, token in enumerate(canvas)))
        for canvas in itertools.product(range(log_p.shape[1]), repeat=4)
        if _collapse(canvas) == target
    )
    assert int(count) == len(target)
    np.testing.assert_allclose(float(nll) * len(target), -np.log(total), rtol=1e-5)


@pytest.mark.slow
def test_ctc_generate_writes_the_collapsed_argmax_canvas_after_each_prompt():
    cfg = make_tiny_config(attention_mask_kind="prefix_full", max_len=16)
    model = make_decoder(cfg, seed=3)
    prompts = np.asarray([[1, 6, 7, 8, 3], [1, 9, 3, 0, 0]], np.int32)
    lengths = np.asarray([5, 3], np.int32)
    out = ctc_generate(
        model, prompts, lengths, ratio=2, max_new_tokens=8, blank_id=BLANK, eos_id=vocab.EOS
    )
    rows, canvas_len = canvas_rows(jnp.asarray(prompts), jnp.asarray(lengths), 2, 16, 0)
    logits, _ = model(rows, lengths_B=jnp.asarray(lengths) + canvas_len,
                      prefix_lengths_B=jnp.asarray(lengths))  # fmt: skip
    for b in range(2):
        p, c = int(lengths[b]), int(canvas_len[b])
        expected = _collapse(np.argmax(logits[b, p : p + c], axis=-1).tolist())[:7]
        written = np.asarray(out.tokens_BxL[b]).tolist()
        assert written[:p] == prompts[b, :p].tolist()
        assert written[p : p + len(expected) + 1] == expected + [vocab.EOS]
        assert int(out.lengths_B[b]) == p + len(expected) + 1
        assert all(t == vocab.PAD for t in written[p + len(expected) + 1 :])


def test_ctc_generate_refuses_a_model_whose_slots_cannot_see_each_other():
    model = make_decoder(make_tiny_config(attention_mask_kind="causal"))
    with pytest.raises(ValueError, match="canvas slots see each other"):
        ctc_generate(model, [[1, 6, 3]], ratio=2, max_new_tokens=4, blank_id=BLANK)


def test_the_record_says_what_ctc_is():
    record = objective_of("ctc")
    assert record.model_kind == "alignment" and record.canvas_ratio == 2
    assert not record.trains_length_head and record.trains_mask(mask_kind("prefix_full"))
    assert not record.trains_mask(mask_kind("causal"))


def test_the_plan_refuses_a_canvas_that_does_not_fit_or_a_task_without_a_source():
    config = two_alphabets.get_config()
    assert make_plan(config, "ctc").model.max_len == 40
    config.variants.ctc.model.max_len = 30
    with pytest.raises(ValueError, match=r"needs model.max_len >= 38, got 30"):
        make_plan(config, "ctc")
    config = tiny.get_config()
    config.data.update(task="random", loss_on="all")
    config.model.update(attention_mask_kind="full", max_len=64)
    config.train.objective = "ctc"
    config.variants = {}
    with pytest.raises(ValueError, match="has rows without one"):
        make_plan(config, "")


def test_the_ctc_row_scores_ctc_models_only():
    def ids(mask, objective):
        return [s.id for s in decoders.scored_on(mask_kind(mask), objective_of(objective))]

    assert ids("prefix_full", "ctc") == ["ctc"] and ids("full", "ctc") == ["ctc"]
    assert "ctc" not in ids("prefix_full", "masked") + ids("causal", "teacher_forcing")
    assert decoders.DECODERS["ctc"].params.to_json() == {"iterations": 1, "canvas_ratio": 2}


@pytest.mark.slow
@pytest.mark.parametrize("architecture", ["decoder", "encoder_decoder"])
def test_ctc_generate_runs_the_prompt_and_widest_canvas_only_and_writes_the_same(architecture):
    # Prompts of width 5 and canvases of 2 x 3 slots need rows of 11, not max_len=40.
    kind = "prefix_full" if architecture == "decoder" else "full"
    cfg = make_tiny_config(attention_mask_kind=kind, max_len=40, architecture=architecture)
    graphdef, state = nnx.split(make_decoder(cfg, seed=4))
    prompts = jnp.asarray([[1, 6, 7, 8, 3], [1, 9, 3, 0, 0], [1, 5, 6, 3, 0]], jnp.int32)
    lengths = jnp.asarray([5, 3, 4], jnp.int32)
    assert canvas_width(40, 5, 2) == 11
    kwargs = dict(ratio=2, max_new_tokens=8, blank_id=BLANK, pad_id=vocab.PAD)
    narrow, wide = (
        _ctc_jit(graphdef, state, prompts, lengths, jnp.int32(vocab.EOS), width=width, **kwargs)
        for width in (None, 40)
    )
    np.testing.assert_array_equal(narrow.tokens_BxL, wide.tokens_BxL)
    np.testing.assert_array_equal(narrow.lengths_B, wide.lengths_B)
