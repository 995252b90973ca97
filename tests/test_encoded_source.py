"""Split seq2seq batches (data.batching.split_seq2seq, model/encoded_source.py): an
encoder-decoder trains with its encoder over source tokens only and its decoder over target
slots only, yet every objective's loss is the one-row layout's; decoders refuse split batches."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from data import batching, vocab
from model import architecture_of, make_decoder
from objectives import objective_of, teacher_forcing_loss
from objectives.common import length_loss
from sections import TrainConfig
from tests.conftest import make_tiny_config
from training.step import Hyperparams, eval_step, init_train_state, train_step


def _row_batch(seed: int = 0, seq_len: int = 24):
    rng = np.random.default_rng(seed)
    source_lengths = np.array([5, 1, 9, 3])
    target_lengths = np.array([4, 8, 2, 6])
    source = rng.integers(vocab.FIRST_SYMBOL, 30, (4, 9))
    target = rng.integers(vocab.FIRST_SYMBOL, 30, (4, 8))
    return batching.seq2seq_batch(
        source, source_lengths, target, target_lengths, seq_len=seq_len, loss_on="target"
    )


def _model(**overrides):
    settings = dict(attention_mask_kind="full", length_head=True, max_len=40, vocab_size=30)
    cfg = make_tiny_config(architecture="encoder_decoder", **(settings | overrides))
    return make_decoder(cfg, seed=2)


def test_the_split_batch_holds_each_prompt_and_each_decoder_row_at_its_own_width():
    row = _row_batch()
    split = batching.split_seq2seq(row, ladder=(4, 8, 12, 16))
    assert split["source"].shape == (4, 12) and split["inputs"].shape == (4, 12)
    for b in range(4):
        p, n = row["prefix_lengths"][b], row["lengths"][b]
        np.testing.assert_array_equal(split["source"][b, :p], row["inputs"][b, :p])
        assert np.all(split["source"][b, p:] == vocab.PAD)  # No target token reaches the encoder.
        np.testing.assert_array_equal(split["inputs"][b, : n - p + 1], row["inputs"][b, p - 1 : n])
        assert split["inputs"][b, 0] == vocab.SEP  # No source token reaches the decoder.
        np.testing.assert_array_equal(
            split["loss_mask"][b].sum(), row["loss_mask"][b].sum()
        )  # Every scored target token is kept.
    np.testing.assert_array_equal(split["prefix_lengths"], 1)


def test_a_loss_on_the_prompt_cannot_be_split():
    row = _row_batch()
    row["loss_mask"][:] = 1.0
    with pytest.raises(ValueError, match="loss_on='target'"):
        batching.split_seq2seq(row)


def test_a_decoder_refuses_a_split_batch():
    split = batching.split_seq2seq(_row_batch())
    with pytest.raises(ValueError, match="needs an encoder"):
        make_decoder(make_tiny_config(), seed=0).for_batch(split)


def _losses(model, batch, objective: str):
    record = objective_of(objective)
    loss = record.held_out_loss or teacher_forcing_loss
    rng = jax.random.key(0)
    view = model.for_batch({k: jnp.asarray(v) for k, v in batch.items()})
    value, count = loss(view, {k: jnp.asarray(v) for k, v in batch.items()}, rng, None)
    return float(value), float(count), float(length_loss(view, batch))


@pytest.mark.slow
@pytest.mark.parametrize(
    "objective, overrides",
    [
        ("teacher_forcing", dict(attention_mask_kind="causal")),
        ("teacher_forcing", dict(attention_mask_kind="causal", decoder_positions="row")),
        ("ctc", dict(max_len=80)),
        ("ctc", dict(max_len=80, decoder_positions="row")),
    ],
)
def test_the_split_layout_gives_the_row_layouts_loss(objective, overrides, exact_fp32_matmuls):
    # Deterministic losses: the one-row model and the split one compute the same function.
    model = _model(**overrides)
    row = _row_batch()
    split = batching.split_seq2seq(row)
    np.testing.assert_allclose(
        _losses(model, split, objective), _losses(model, row, objective), rtol=2e-5
    )


@pytest.mark.slow
@pytest.mark.parametrize("decoder_positions", ["target", "row"])
def test_split_logits_equal_the_row_layouts_at_every_target_slot(
    decoder_positions, exact_fp32_matmuls
):
    # MASK inputs copied from the source (GLAT), so the copy's slot arithmetic is checked too.
    model = _model(source_copy_id=vocab.MASK, decoder_positions=decoder_positions)
    row = _row_batch()
    span = (np.arange(24)[None, :] >= row["prefix_lengths"][:, None]) & (
        np.arange(24)[None, :] < row["lengths"][:, None]
    )
    row["inputs"] = np.where(span, vocab.MASK, row["inputs"]).astype(np.int32)
    split = batching.split_seq2seq(row)
    row_logits, _ = model(
        row["inputs"], lengths_B=row["lengths"], prefix_lengths_B=row["prefix_lengths"]
    )
    view = model.for_batch(split)
    split_logits, _ = view(
        split["inputs"], lengths_B=split["lengths"], prefix_lengths_B=split["prefix_lengths"]
    )
    for b in range(4):
        p, n = row["prefix_lengths"][b], row["lengths"][b]
        np.testing.assert_allclose(
            split_logits[b, : n - p + 1], row_logits[b, p - 1 : n], rtol=1e-5, atol=1e-5
        )


@pytest.mark.slow
def test_the_decoder_reads_no_source_column_past_a_prompt():
    # Whatever the source array holds past each prompt, the decoder's logits do not change:
    # the encoder masks those columns, and the decoder rows hold no source token at all.
    model = _model(attention_mask_kind="causal")
    split = batching.split_seq2seq(_row_batch())
    noise = np.random.default_rng(5).integers(vocab.FIRST_SYMBOL, 30, split["source"].shape)
    past = np.arange(split["source"].shape[1])[None, :] >= split["source_lengths"][:, None]
    noisy = dict(split, source=np.where(past, noise, split["source"]).astype(np.int32))
    logits = [
        model.for_batch(batch)(
            batch["inputs"], lengths_B=batch["lengths"], prefix_lengths_B=batch["prefix_lengths"]
        )[0]
        for batch in (split, noisy)
    ]
    np.testing.assert_array_equal(logits[0], logits[1])


@pytest.mark.slow
def test_a_split_train_step_costs_less_than_the_row_layouts(exact_fp32_matmuls):
    # XLA's own FLOP count of the compiled step: the row layout runs both stacks and the LM
    # head over all T positions; the split one each over its own width.
    cfg = _model(attention_mask_kind="causal").cfg
    hparams = Hyperparams.from_config(TrainConfig())
    graphdef, params, opt_state = init_train_state(cfg, hparams, seed=0)
    row = {k: jnp.asarray(v) for k, v in _row_batch().items()}
    split = {k: jnp.asarray(v) for k, v in batching.split_seq2seq(_row_batch()).items()}

    def flops(batch):
        lowered = train_step.lower(
            graphdef, params, opt_state, batch, 0, jax.random.key(0), hparams,
            objective="teacher_forcing",
        )  # fmt: skip
        return lowered.compile().cost_analysis()["flops"]

    assert flops(split) < 0.7 * flops(row)


@pytest.mark.slow
@pytest.mark.parametrize("objective", ["teacher_forcing", "masked", "glancing", "ctc"])
def test_a_train_step_on_a_split_batch_runs_every_objective(objective, exact_fp32_matmuls):
    # Deterministic objectives (teacher forcing, CTC) update the weights as the one-row step
    # does; the masked ones draw their masks over the split rows, so they are only run.
    overrides = dict(max_len=80) if objective == "ctc" else {}
    if objective == "glancing":
        overrides["source_copy_id"] = vocab.MASK
    cfg = _model(**overrides).cfg
    train = dataclasses.replace(TrainConfig(), objective=objective, label_smoothing=0.0)
    hparams = Hyperparams.from_config(train)
    row = {k: jnp.asarray(v) for k, v in _row_batch().items()}
    split = {k: jnp.asarray(v) for k, v in batching.split_seq2seq(_row_batch()).items()}
    results = []
    for batch in (row, split):
        graphdef, params, opt_state = init_train_state(cfg, hparams, seed=0)
        params, _, metrics = train_step(
            graphdef, params, opt_state, batch, 0, jax.random.key(0), hparams,
            objective=objective,
        )  # fmt: skip
        assert np.isfinite(float(metrics["loss"]))
        held_out, count = eval_step(graphdef, params, batch, jax.random.key(1), objective=objective)
        assert np.isfinite(float(held_out)) and 0 < float(count) <= float(row["loss_mask"].sum())
        results.append((metrics, params))
    if objective in ("teacher_forcing", "ctc"):
        (row_metrics, row_params), (split_metrics, split_params) = results
        np.testing.assert_allclose(row_metrics["loss"], split_metrics["loss"], rtol=2e-5)
        assert row_metrics["loss_tokens"] == split_metrics["loss_tokens"]
        for a, b in zip(jax.tree.leaves(row_params), jax.tree.leaves(split_params), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_a_ctc_steps_flops_count_the_canvas_it_runs_as_xla_does():
    """CTC's decoder runs over its canvas (ratio x the source slots), not the target's width:
    its logged FLOPs follow XLA's count of the loss's forward and backward on a split batch,
    where counting the target's width would fall short."""
    model = _model(max_len=80, length_head=False)
    split = batching.split_seq2seq(_row_batch())
    batch = {k: jnp.asarray(v) for k, v in split.items()}
    graphdef, state = nnx.split(model)

    def loss(state):
        view = nnx.merge(graphdef, state).for_batch(batch)
        return objective_of("ctc").loss(view, batch, jax.random.key(0), None)[0]

    cost = jax.jit(jax.grad(loss)).lower(state).compile().cost_analysis()
    xla = (cost[0] if isinstance(cost, list) else cost)["flops"]
    arch = architecture_of(model.cfg)
    counted = objective_of("ctc").step_flops(arch, model.cfg, split)
    assert 0.8 < counted / xla < 1.2, (counted, xla)
    assert arch.train_flops(model.cfg, split) / xla < 0.8  # The target's width alone.


@pytest.mark.slow
def test_a_glancing_steps_flops_count_its_decoder_only_first_pass_as_xla_does():
    """GLAT's first pass runs the decoder alone against the one encoder output of the step:
    its count over CMLM's on the same split batch follows XLA's count of both losses' forward
    and backward, where 4/3 of a whole pass (the encoder again) would not."""
    model = _model(max_len=40)
    split = batching.split_seq2seq(_row_batch())
    batch = {k: jnp.asarray(v) for k, v in split.items()}
    graphdef, state = nnx.split(model)
    arch, counted, xla = architecture_of(model.cfg), {}, {}
    for name in ("masked", "glancing"):

        def loss(state, name=name):
            view = nnx.merge(graphdef, state).for_batch(batch)
            return objective_of(name).loss(view, batch, jax.random.key(0), None)[0]

        cost = jax.jit(jax.grad(loss)).lower(state).compile().cost_analysis()
        xla[name] = (cost[0] if isinstance(cost, list) else cost)["flops"]
        counted[name] = objective_of(name).step_flops(arch, model.cfg, split)
    ours, theirs = counted["glancing"] / counted["masked"], xla["glancing"] / xla["masked"]
    assert abs(ours / theirs - 1) < 0.1, (ours, theirs)
    assert 1 < ours < 4 / 3  # The encoder is not run again.
