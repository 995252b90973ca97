"""Non-AR decoding (model/nar.py): the CMLM mask, and mask-predict with fake and tiny models."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import data
from data import vocab
from evaluation import decoders, scoring
from experiments import ar_vs_nar
from model import Decoder, init_cache, make_decoder
from model.nar import _mask_predict_jit, mask_predict, mask_predict_loop
from model.nar_masks import cmlm_mask, glancing_mask
from plan import experiment_json, make_plans
from tests.conftest import make_tiny_config
from training import run_folder
from training.checkpoints import load_params
from training.loop import train_experiment

MASK = vocab.MASK


def test_cmlm_mask_masks_k_in_1_to_m_target_positions_only():
    B, T = 512, 20
    inputs_BxT = jnp.asarray(np.random.default_rng(0).integers(5, 20, (B, T)), jnp.int32)
    prefix_B = jnp.asarray(np.random.default_rng(1).integers(2, 8, B), jnp.int32)
    lengths_B = prefix_B + jnp.asarray(np.random.default_rng(2).integers(1, 11, B), jnp.int32)
    tokens, targets, loss_mask = jax.jit(cmlm_mask, static_argnames="mask_id")(
        inputs_BxT, prefix_B, lengths_B, jax.random.key(0), mask_id=MASK
    )
    tokens, targets, loss_mask = map(np.asarray, (tokens, targets, loss_mask))
    cols = np.arange(T)
    in_span = (cols >= np.asarray(prefix_B)[:, None]) & (cols < np.asarray(lengths_B)[:, None])
    k_B, m_B = loss_mask.sum(1), np.asarray(lengths_B - prefix_B)
    assert np.all((k_B >= 1) & (k_B <= m_B))
    assert not loss_mask[~in_span].any()
    np.testing.assert_array_equal(targets, inputs_BxT)  # Unshifted originals.
    np.testing.assert_array_equal(tokens, np.where(loss_mask > 0, MASK, inputs_BxT))
    # k is uniform on 1..m: rows with m = 10 see every k, with mean near 5.5.
    k_of_m10 = k_B[m_B == 10]
    assert set(k_of_m10.astype(int)) == set(range(1, 11))
    assert abs(k_of_m10.mean() - 5.5) < 1.0


@pytest.mark.slow
def test_cmlm_mask_picks_positions_uniformly_within_the_span():
    B, T = 4000, 12
    inputs_BxT = jnp.full((B, T), 7, jnp.int32)
    _, _, loss_mask = cmlm_mask(
        inputs_BxT, jnp.full((B,), 2), jnp.full((B,), 10), jax.random.key(3), mask_id=MASK
    )
    rate_T = np.asarray(loss_mask).mean(0)
    # E[k/m] = (m + 1) / (2m) = 0.5625 for m = 8, the same at every span position.
    np.testing.assert_allclose(rate_T[2:10], 0.5625, atol=0.04)
    assert rate_T[:2].sum() == rate_T[10:].sum() == 0


def _fake_logits_fn(V, target_lengths_B, confidence_BxL):
    """A controlled model: at every position it predicts 10 + (MASKs in its row).

    The prediction's probability is confidence_BxL on the first pass (all targets masked) and
    0.99 on later passes, so the output shows which positions each pass re-masked.
    """

    def logits_fn(tokens_BxL):
        masks_B = (tokens_BxL == MASK).sum(1)
        first_pass_B = masks_B == target_lengths_B
        prob_BxL = jnp.where(first_pass_B[:, None], confidence_BxL, 0.99)
        token_B = 10 + masks_B
        one_hot_BxLxV = jax.nn.one_hot(token_B, V)[:, None, :]
        rest_BxL = (1 - prob_BxL) / (V - 1)
        probs_BxLxV = jnp.where(one_hot_BxLxV > 0, prob_BxL[..., None], rest_BxL[..., None])
        return jnp.log(probs_BxLxV)

    return logits_fn


def _run_loop(logits_fn, T, K, L=10, start=2):
    tokens_1xL = jnp.asarray([[1, 5] + [0] * (L - 2)], jnp.int32)
    target_1xL = (jnp.arange(L) >= start) & (jnp.arange(L) < start + T)
    loop = jax.jit(mask_predict_loop, static_argnums=(0, 5))
    return loop(logits_fn, tokens_1xL, target_1xL[None], jnp.asarray([T]), jnp.int32(K), MASK)


def test_glancing_reveals_ratio_times_the_first_pass_errors_within_the_target():
    # Rows: prompt of 3, then targets of 8; a fake first pass gets 0, 2, 5 and 8 of them wrong.
    B, T, prefix, length = 4, 12, 3, 11
    inputs = jnp.asarray(np.random.default_rng(0).integers(5, 20, (B, T)), jnp.int32)
    wrong = np.zeros((B, T), bool)
    for b, n in enumerate((0, 2, 5, 8)):
        wrong[b, prefix : prefix + n] = True
    predicted = jnp.where(wrong, 4, inputs)  # 4 is never an input here: a wrong prediction.
    lengths = jnp.full((B,), length)
    for ratio in (0.5, 1.0):
        for seed in range(5):
            tokens, loss_mask = glancing_mask(
                inputs, jnp.full((B,), prefix), lengths, predicted, ratio,
                jax.random.key(seed), mask_id=vocab.MASK,
            )  # fmt: skip
            tokens, loss_mask = np.asarray(tokens), np.asarray(loss_mask)
            revealed = ((tokens == np.asarray(inputs)) & (loss_mask == 0))[:, prefix:length]
            np.testing.assert_array_equal(
                revealed.sum(1), np.floor(ratio * np.array([0, 2, 5, 8])).astype(int)
            )
            # Outside the target nothing changes or counts; inside, unrevealed means MASK.
            np.testing.assert_array_equal(tokens[:, :prefix], inputs[:, :prefix])
            np.testing.assert_array_equal(tokens[:, length:], inputs[:, length:])
            assert (loss_mask[:, :prefix] == 0).all() and (loss_mask[:, length:] == 0).all()
            assert (tokens[loss_mask == 1] == vocab.MASK).all()
    # A perfect first pass reveals nothing: the whole target is masked and learnt.
    assert loss_mask[0, prefix:length].sum() == length - prefix


def test_remasking_picks_the_least_confident_tokens_and_updates_them():
    T = 6
    confidence_1xL = jnp.asarray([[1, 1, 0.5, 0.2, 0.9, 0.3, 0.8, 0.4, 1, 1]])
    fake = _fake_logits_fn(30, jnp.asarray([T]), confidence_1xL)
    tokens, probs = _run_loop(fake, T, K=2)
    # K=2: pass 2 re-masks floor(6 * 1/2) = 3 least confident (0.2, 0.3, 0.4), seeing 3 MASKs.
    np.testing.assert_array_equal(tokens[0], [1, 5, 16, 13, 16, 13, 16, 13, 0, 0])
    np.testing.assert_allclose(probs[0, 2:8], [0.5, 0.99, 0.9, 0.99, 0.8, 0.99], rtol=1e-5)
    # K=3: pass 2 re-masks 4 (0.2, 0.3, 0.4, 0.5) and raises them to 0.99, so pass 3 re-masks
    # the 2 tokens that are now least confident: the ones at 0.8 and 0.9, never re-masked yet.
    tokens, _ = _run_loop(fake, T, K=3)
    np.testing.assert_array_equal(tokens[0], [1, 5, 14, 14, 12, 14, 12, 14, 0, 0])


@pytest.mark.slow
def test_k1_is_one_parallel_argmax_of_the_model():
    cfg = make_tiny_config(attention_mask_kind="full")
    model = make_decoder(cfg, seed=1)
    prompts = np.array([[1, 7, 8, 9, 3], [1, 6, 3, 0, 0]], np.int32)
    prompt_lengths, target_lengths = np.array([5, 3]), np.array([3, 1])
    out = mask_predict(
        model, prompts, prompt_lengths, target_lengths, num_iterations=1, mask_id=MASK
    )
    # The reference: one plain forward pass over `prompt MASK...`, padded to a common width.
    masked = np.array([[1, 7, 8, 9, 3, MASK, MASK, MASK], [1, 6, 3, MASK, 0, 0, 0, 0]])
    logits = nnx.jit(lambda m, t: m(t, lengths_B=jnp.asarray([8, 4]))[0])(model, masked)
    for row in range(2):
        p, t = prompt_lengths[row], target_lengths[row]
        np.testing.assert_array_equal(out.tokens_BxL[row, :p], prompts[row, :p])
        np.testing.assert_array_equal(
            out.tokens_BxL[row, p : p + t], logits[row, p : p + t].argmax(-1)
        )
        assert np.all(np.asarray(out.tokens_BxL[row, p + t :]) == 0)
    np.testing.assert_array_equal(out.lengths_B, prompt_lengths + target_lengths)


@pytest.mark.slow
def test_prompt_cache_decodes_like_re_encoding_the_prompt_every_pass():
    # prefix_full: the prompt never sees the targets, so encoding it once (use_cache) must give
    # what re-encoding prompt + target in every pass gives; mixed prompt and target lengths.
    model = make_decoder(make_tiny_config(attention_mask_kind="prefix_full"), seed=2)
    rng = np.random.default_rng(0)
    prompts = rng.integers(5, 20, (4, 6)).astype(np.int32)
    prompt_lengths, target_lengths = np.array([6, 3, 5, 2]), np.array([4, 7, 1, 5])
    for K in (1, 2, 4):
        cached, plain = (
            mask_predict(
                model,
                prompts,
                prompt_lengths,
                target_lengths,
                num_iterations=K,
                mask_id=MASK,
                eos_id=vocab.EOS,
                use_cache=use_cache,
            )
            for use_cache in (True, False)
        )
        np.testing.assert_array_equal(cached.tokens_BxL, plain.tokens_BxL)
        np.testing.assert_array_equal(cached.lengths_B, plain.lengths_B)
    # The logits agree too: prefill + one target-only pass through the cache, against one plain
    # forward pass over `prompt MASK...` (each row's targets right after its prompt).
    P, T = prompts.shape[1], target_lengths.max()
    tokens_BxW = np.zeros((4, P + T), np.int32)
    for row, (p, t) in enumerate(zip(prompt_lengths, target_lengths, strict=True)):
        tokens_BxW[row, :p], tokens_BxW[row, p : p + t] = prompts[row, :p], MASK
    ends, starts = jnp.asarray(prompt_lengths + target_lengths), jnp.asarray(prompt_lengths)

    @nnx.jit
    def both(model):
        plain, _ = model(jnp.asarray(tokens_BxW), lengths_B=ends, prefix_lengths_B=starts)
        _, cache = model(
            jnp.asarray(prompts),
            lengths_B=starts,
            prefix_lengths_B=starts,
            cache=init_cache(model.cfg, 4, P + T),
        )
        targets, _ = model(
            jnp.full((4, T), MASK, jnp.int32),
            positions_BxT=starts[:, None] + jnp.arange(T)[None, :],
            lengths_B=jnp.asarray(target_lengths),
            prefix_lengths_B=starts,
            cache=cache,
        )
        return plain, targets

    plain, targets = map(np.asarray, both(model))
    for row, (p, t) in enumerate(zip(prompt_lengths, target_lengths, strict=True)):
        np.testing.assert_allclose(targets[row, :t], plain[row, p : p + t], atol=1e-5)


def test_perfect_model_is_fixed_after_one_pass_and_prompt_never_changes():
    V, T = 30, 5
    truth_1xL = jnp.asarray([[21, 22, 23, 24, 25, 26, 27, 28, 29, 20]])

    def oracle(tokens_BxL):  # Right everywhere, whatever is masked.
        return 10.0 * jax.nn.one_hot(truth_1xL, V)

    for K in (1, 2, 4, 8):
        tokens, _ = _run_loop(oracle, T, K)
        np.testing.assert_array_equal(tokens[0], [1, 5, 23, 24, 25, 26, 27, 0, 0, 0])


@pytest.mark.slow
def test_mask_predict_output_matches_generate_layout_and_k_never_recompiles():
    cfg = make_tiny_config(attention_mask_kind="full")
    model = make_decoder(cfg, seed=0)
    prompts = np.array([[1, 7, 8, 3], [1, 6, 3, 0]], np.int32)
    before = _mask_predict_jit._cache_size()
    outs = [
        mask_predict(
            model, prompts, [4, 3], [2, 1], num_iterations=K, mask_id=MASK, eos_id=vocab.EOS
        )
        for K in (1, 3, 4)
    ]
    assert _mask_predict_jit._cache_size() == before + 1
    tokens = np.asarray(outs[-1].tokens_BxL)
    assert tokens.shape == (2, 4 + 2 + 1)
    np.testing.assert_array_equal(outs[-1].lengths_B, [7, 5])
    assert tokens[0, 6] == tokens[1, 4] == vocab.EOS
    assert np.all(tokens[1, 5:] == 0)
    # Padding is invisible: row 1 alone decodes the same as inside the batch.
    alone = mask_predict(
        model, prompts[1:, :3], [3], [1], num_iterations=4, mask_id=MASK, eos_id=vocab.EOS
    )
    np.testing.assert_array_equal(alone.tokens_BxL[0, :5], tokens[1, :5])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_iterations=0), "num_iterations"),
        (dict(target_lengths=[0, 1]), "target_lengths"),
        (dict(target_lengths=[60, 1]), "max_len"),
        (dict(prompts=np.array([[1, 99], [1, 3]])), "token ids"),
        (dict(prompt_lengths=[3, 1]), "prompt_lengths"),
        (dict(mask_kind="causal"), "targets see each other"),
        (dict(mask_kind="full", use_cache=True), "prefix_full"),
    ],
)
def test_mask_predict_rejects_bad_input(kwargs, message):
    args = dict(
        prompts=np.array([[1, 3], [1, 3]]),
        prompt_lengths=[2, 2],
        target_lengths=[2, 2],
        num_iterations=2,
        mask_kind="full",
    )
    args.update(kwargs)
    model = make_decoder(make_tiny_config(attention_mask_kind=args.pop("mask_kind")))
    with pytest.raises(ValueError, match=message):
        mask_predict(
            model,
            args["prompts"],
            args["prompt_lengths"],
            args["target_lengths"],
            num_iterations=args["num_iterations"],
            mask_id=MASK,
            use_cache=args.get("use_cache"),
        )


@pytest.mark.slow
@pytest.mark.parametrize("task_name", ["reverse", "sort"])
def test_mask_predict_k4_is_within_5_points_of_ar(task_name, tmp_path):
    """Trains experiments/ar_vs_nar.py's AR and CMLM variants of one task with train.py's code."""
    config = ar_vs_nar.get_config()
    config.train.update(eval_every=0, checkpoint_every=1000)
    for variant in (f"{task_name}_ar", f"{task_name}_nar"):
        train_experiment(make_plans(config, variant), str(tmp_path), experiment_json(config))
    nar_run = str(tmp_path / f"{task_name}_nar" / "seed_0")
    nar, _, nar_config, _ = load_params(nar_run)
    ar, _, _, _ = load_params(run_folder.sibling_run(nar_run, nar_config.eval.nar.ar_variant))
    task = data.make_task(nar_config.data)
    batches = [task.batch(step, 64, split="eval") for step in range(4)]
    exact = {}
    for name, model in (("ar_cache", ar), ("mask_predict_k4", nar)):
        spec = decoders.DECODERS[name]
        exact[name] = scoring.decode_and_score(
            spec, decoders.Models(model), batches, task, 0
        ).exact_match
    print(task_name, {name: e.mean() for name, e in exact.items()})
    assert exact["mask_predict_k4"].mean() >= exact["ar_cache"].mean() - 0.05


class _PerfectLength(Decoder):
    """A fake length head: every row's target is as long as its source (prompt - BOS - SEP)."""

    def length_logits(self, prompts_BxP, prompt_lengths_B):
        return 100.0 * jax.nn.one_hot(prompt_lengths_B - 2, self.cfg.max_len + 1)


@pytest.mark.slow
def test_a_perfect_length_head_decodes_as_the_oracle_length_does():
    cfg = make_tiny_config(max_len=30, attention_mask_kind="prefix_full", length_head=True)
    model = _PerfectLength(cfg, rngs=nnx.Rngs(params=0))
    prompts = np.random.default_rng(0).integers(5, cfg.vocab_size, (5, 8))
    prompt_lengths = np.array([8, 4, 3, 6, 5])
    kwargs = dict(num_iterations=2, mask_id=vocab.MASK, eos_id=vocab.EOS, max_target_len=10)
    oracle = mask_predict(model, prompts, prompt_lengths, prompt_lengths - 2, **kwargs)
    predicted = mask_predict(model, prompts, prompt_lengths, None, length_beam=1, **kwargs)
    np.testing.assert_array_equal(np.asarray(predicted.tokens_BxL), np.asarray(oracle.tokens_BxL))
    np.testing.assert_array_equal(predicted.lengths_B, oracle.lengths_B)
    # A beam of 3 keeps, per row, the decode of one of its 3 likeliest lengths.
    beam = mask_predict(model, prompts, prompt_lengths, None, length_beam=3, **kwargs)
    logits = np.array(model.length_logits(jnp.asarray(prompts), jnp.asarray(prompt_lengths)))
    logits[:, 0] = logits[:, 11:] = -np.inf
    for b in range(5):
        length = int(beam.lengths_B[b]) - prompt_lengths[b] - 1
        assert length in np.argsort(-logits[b], kind="stable")[:3]
        single = mask_predict(
            model, prompts[b : b + 1], prompt_lengths[b : b + 1], [length], **kwargs
        )
        np.testing.assert_array_equal(
            np.asarray(beam.tokens_BxL)[b, : int(beam.lengths_B[b])],
            np.asarray(single.tokens_BxL)[0, : int(single.lengths_B[0])],
        )


def test_predicted_lengths_need_a_length_head():
    model = make_decoder(make_tiny_config(attention_mask_kind="prefix_full"), 0)
    with pytest.raises(ValueError, match="length head"):
        mask_predict(model, np.ones((1, 4), int), [4], None, num_iterations=1, mask_id=vocab.MASK)
