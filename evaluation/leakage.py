"""Leakage metrics: how much a decoder's prediction at position t depends on tokens after t.

Three measurements (docs/evaluation.md), all in float32:
- perturbation: change every token after t and take the largest |Δ logits| at positions <= t;
- dependency map: the norm of ∂ logits_t / ∂ embedding_s for every (t, s), and its mass above the
  diagonal; and the attention probabilities per layer, recomputed from the parameters;
- random-token floor (`random_floor` in evaluation/quality.py): no honest model beats ln(V).

t ranges over the scored positions [loss_start, lengths - 1): the predictions the task grades. A
prefix-LM sees its whole prompt by design, so leakage inside the prompt is not counted.
Shape legend: B rows, T positions, V vocab, D d_model, L layers, H heads, K head dim.
"""

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from data import vocab
from evaluation import forward
from evaluation.report.schema import MetricSpec
from evaluation.run import LoadedRun, Measurement
from model import EMPTY, Decoder
from sections import EvalConfig

Log = Callable[[str], None]


def scored_start(batch: dict[str, np.ndarray]) -> np.ndarray:
    """First scored input position of each row (prefix_len - 1 for seq2seq, 0 for text)."""
    return np.argmax(batch["loss_mask"] > 0, axis=1).astype(np.int32)


def block_end(t_B: np.ndarray, prefix_lengths_B: np.ndarray, block_size: int) -> np.ndarray:
    """The last position of the block_causal block that holds position t_B (model/attention.py
    `block_ids`: blocks of block_size from the end of the prompt; the prompt is one block)."""
    target_B = np.maximum(t_B - prefix_lengths_B, -1)
    end_B = prefix_lengths_B + (target_B // block_size + 1) * block_size - 1
    return np.where(t_B < prefix_lengths_B, prefix_lengths_B - 1, end_B).astype(np.int32)


def perturb_after(
    tokens_BxT: np.ndarray, t_B: np.ndarray, lengths_B: np.ndarray, vocab_size: int, seed: int
) -> np.ndarray:
    """Replaces every real token after t_B[b] with a different random non-special token."""
    rng = np.random.default_rng(seed)
    num_symbols = vocab_size - vocab.FIRST_SYMBOL
    shift_BxT = rng.integers(1, num_symbols, size=tokens_BxT.shape)
    changed_BxT = vocab.FIRST_SYMBOL + (tokens_BxT - vocab.FIRST_SYMBOL + shift_BxT) % num_symbols
    position_T = np.arange(tokens_BxT.shape[1])[None]
    after_BxT = (position_T > t_B[:, None]) & (position_T < lengths_B[:, None])
    return np.where(after_BxT, changed_BxT, tokens_BxT).astype(np.int32)


def perturbation_leakage(
    model: Decoder,
    batch: dict[str, np.ndarray],
    num_positions: int,
    seed: int = 0,
    across_blocks: bool = False,
) -> float:
    """Largest |Δ logits| at positions <= t when every token after t changes (0.0 = no leak).

    t takes `num_positions` evenly spaced values in each row's scored range. `across_blocks`
    (a block_causal model): t moves to the end of its block first, so only later blocks change;
    a block's own tokens see each other by design.
    """
    inputs_BxT, lengths_B = batch["inputs"], batch["lengths"]
    prefix_B = batch["prefix_lengths"]
    start_B = scored_start(batch)
    last_B = np.maximum(lengths_B - 2, start_B)  # The last t that still has a real token after it.
    base_BxTxV = forward.logits(model, inputs_BxT, lengths_B, prefix_B)
    worst = 0.0
    for i, fraction in enumerate(np.linspace(0.0, 1.0, num_positions)):
        t_B = np.round(start_B + fraction * (last_B - start_B)).astype(np.int32)
        if across_blocks:
            t_B = block_end(t_B, prefix_B, model.cfg.block_size)
        perturbed_BxT = perturb_after(inputs_BxT, t_B, lengths_B, model.cfg.vocab_size, seed + i)
        logits_BxTxV = forward.logits(model, perturbed_BxT, lengths_B, prefix_B)
        past_BxT = np.arange(inputs_BxT.shape[1])[None] <= t_B[:, None]
        delta_BxT = np.abs(logits_BxTxV - base_BxTxV).max(axis=-1)
        worst = max(worst, float(np.max(np.where(past_BxT, delta_BxT, 0.0))))
    return worst


@functools.partial(jax.jit, static_argnames=("graphdef", "forward_mode"))
def _dependency_map(graphdef, state, tokens_1xT, lengths_1, prefix_lengths_1, forward_mode):
    """[T, T] norms of the Jacobian blocks ∂ logits_t / ∂ embedding_s, exactly, in the cheaper
    mode: reverse mode takes T x V backward passes, forward mode T x D forward passes (a
    subword vocabulary of thousands against a d_model of hundreds)."""
    model = nnx.merge(graphdef, state)
    T = tokens_1xT.shape[1]
    positions_1xT = jnp.arange(T, dtype=jnp.int32)[None]
    x_1xTxD = model.embed(tokens_1xT, positions_1xT)
    D = x_1xTxD.shape[-1]

    def logits_TxV(x_1xTxD):
        return model.from_embeddings(
            x_1xTxD,
            positions_BxT=positions_1xT,
            lengths_B=lengths_1,
            prefix_lengths_B=prefix_lengths_1,
        )[0][0]

    if forward_mode:

        def column(s):
            # One forward pass per (s, d): the columns of the Jacobian for embedding_s.
            tangents_DxTxD = jax.nn.one_hot(s, T)[None, :, None] * jnp.eye(D)[:, None, :]
            jvp = lambda t_1xTxD: jax.jvp(logits_TxV, (x_1xTxD,), (t_1xTxD,))[1]  # noqa: E731
            out_DxTxV = jax.vmap(jvp)(tangents_DxTxD[:, None])
            return jnp.sqrt(jnp.sum(jnp.square(out_DxTxV), axis=(0, 2)))

        return jax.lax.map(column, jnp.arange(T)).T

    out_TxV, vjp = jax.vjp(logits_TxV, x_1xTxD)
    V = out_TxV.shape[1]

    def row(t):
        # One backward pass per (t, v): the rows of the Jacobian of logits_t.
        cotangents_VxTxV = jax.nn.one_hot(t, T)[None, :, None] * jnp.eye(V)[:, None, :]
        (grads_Vx1xTxD,) = jax.vmap(vjp)(cotangents_VxTxV)
        return jnp.sqrt(jnp.sum(jnp.square(grads_Vx1xTxD), axis=(0, 1, 3)))

    return jax.lax.map(row, jnp.arange(T))


def dependency_map(
    model: Decoder,
    tokens_T: np.ndarray,
    length: int,
    prefix_length: int,
    forward_mode: bool | None = None,
) -> np.ndarray:
    """[length, length] map: entry (t, s) = ||∂ logits_t / ∂ embedding_s|| (Frobenius, fp32)."""
    if forward_mode is None:
        forward_mode = model.cfg.d_model < model.cfg.vocab_size
    fn = functools.partial(_dependency_map, forward_mode=forward_mode)
    map_TxT = _on_one_example(fn, model, tokens_T, length, prefix_length)
    return map_TxT[:length, :length]


def _on_one_example(fn, model: Decoder, tokens_T: np.ndarray, length: int, prefix_length: int):
    """fn(graphdef, state, tokens_1xT, lengths_1, prefix_lengths_1) as a numpy array."""
    graphdef, state = nnx.split(model)
    return np.asarray(
        fn(
            graphdef,
            state,
            jnp.asarray(tokens_T, jnp.int32)[None],
            jnp.asarray([length], jnp.int32),
            jnp.asarray([prefix_length], jnp.int32),
        )
    )


def future_share(map_TxT: np.ndarray, first_row: int = 0) -> float:
    """Share of the map's mass strictly above the diagonal, over rows first_row... (0 = causal)."""
    rows_TxT = map_TxT[first_row:]
    t_Tx1 = np.arange(first_row, map_TxT.shape[0])[:, None]
    above = np.arange(map_TxT.shape[1])[None] > t_Tx1
    total = float(rows_TxT.sum())
    return float(rows_TxT[above].sum()) / total if total > 0 else 0.0


def dependency_maps(
    model: Decoder, batch: dict[str, np.ndarray], num_examples: int, max_len: int
) -> tuple[list[np.ndarray], float]:
    """Maps of the first `num_examples` rows (cut to max_len) and their mean future share."""
    start_B = scored_start(batch)
    maps, shares = [], []
    for b in range(min(num_examples, len(batch["inputs"]))):
        length = int(min(batch["lengths"][b], max_len))
        map_TxT = dependency_map(
            model,
            batch["inputs"][b, :max_len],
            length,
            int(batch["prefix_lengths"][b]),
        )
        maps.append(map_TxT)
        shares.append(future_share(map_TxT, int(min(start_B[b], length - 1))))
    return maps, float(np.mean(shares))


@functools.partial(jax.jit, static_argnames=("graphdef",))
def _attention_probs(graphdef, state, tokens_1xT, lengths_1, prefix_lengths_1):
    model = nnx.merge(graphdef, state)
    cfg = model.cfg
    T = tokens_1xT.shape[1]
    positions_1xT = jnp.arange(T, dtype=jnp.int32)[None]
    keys_1xT = jnp.where(positions_1xT < lengths_1[:, None], positions_1xT, EMPTY)
    mask_1x1xTxT = model.self_attention_mask(positions_1xT, keys_1xT, prefix_lengths_1)
    x_1xTxD = model.embed(tokens_1xT, positions_1xT).astype(cfg.compute_dtype)
    # An encoder-decoder's decoder blocks also cross-attend to the encoder output.
    memory = model.memory(x_1xTxD, keys_1xT, prefix_lengths_1, None, [None] * cfg.num_layers)
    probs = []
    for block, cross in zip(model.blocks, model.cross_inputs(memory, T), strict=True):
        qkv_1xTx3xHxK = block.attn.qkv(block.ln_attn(x_1xTxD)).reshape(
            1, T, 3, cfg.num_heads, cfg.head_dim
        )
        q_1xTxHxK, k_1xTxHxK = qkv_1xTx3xHxK[:, :, 0], qkv_1xTx3xHxK[:, :, 1]
        scores_1xHxTxT = jnp.einsum("bthk,bshk->bhts", q_1xTxHxK, k_1xTxHxK).astype(jnp.float32)
        scores_1xHxTxT = scores_1xHxTxT / np.sqrt(cfg.head_dim)
        scores_1xHxTxT = jnp.where(mask_1x1xTxT, scores_1xHxTxT, jnp.finfo(jnp.float32).min)
        probs.append(jax.nn.softmax(scores_1xHxTxT, axis=-1)[0])
        x_1xTxD, _ = block(x_1xTxD, mask_1x1xTxT, None, None, None, cross)
    return jnp.stack(probs)


def attention_maps(
    model: Decoder, tokens_T: np.ndarray, length: int, prefix_length: int
) -> np.ndarray:
    """Attention probabilities [L, H, length, length] of one example, recomputed from q·k."""
    probs_LxHxTxT = _on_one_example(_attention_probs, model, tokens_T, length, prefix_length)
    return probs_LxHxTxT[:, :, :length, :length]


METRICS = (
    MetricSpec(
        "perturbation_leakage",
        "max |Δ logits| (past)",
        verdicts=({"rule": "leakage"},),
        method="**Perturbation**: every real token after position t is replaced by a different "
        "random symbol; the number is the largest |Δ logits| (fp32) at positions ≤ t, over "
        "several t in the scored range of each row and over the rows. Exactly 0.0 means no "
        "scored prediction reads the future.",
    ),
    MetricSpec(
        "perturbation_leakage_across_blocks",
        "max |Δ logits| (earlier blocks)",
        verdicts=(
            {
                "rule": "zero",
                "zero": "{variant}: changing every later block moves no logit of a block: "
                "exactly 0.0 (fp32) in every seed; its tokens see each other only inside a block.",
                "nonzero": "{variant}: changing later blocks moves the logits of a block by up "
                "to {largest}; blocks see the future.",
            },
        ),
        method="**Perturbation across blocks** (block_causal models): as above, with t moved to "
        "the last position of its block, so only later blocks change; inside a block tokens see "
        "each other by design, and `max |Δ logits| (past)` measures that.",
    ),
    MetricSpec(
        "dependency_future_share",
        "future share",
        "percent",
        method="**Future share**: share of the dependency map's mass strictly above the "
        "diagonal, over the scored rows (a prefix-LM reads its prompt by design; the prompt "
        "rows are not scored).",
    ),
)


def evaluate(run: LoadedRun, settings: EvalConfig, log: Log) -> Measurement:
    """The evaluator: perturbation leakage, the dependency map's future share, and the pictures
    (dependency and attention maps of the first held-out row)."""
    batch = run.task.batch(0, settings.leakage_examples, split="eval")
    log("    leakage: perturbation")
    perturbation = perturbation_leakage(run.model, batch, settings.perturbation_positions)
    metrics = {"perturbation_leakage": (perturbation, None)}
    if run.mask_kind.target_view == "block":
        across = perturbation_leakage(
            run.model, batch, settings.perturbation_positions, across_blocks=True
        )
        metrics["perturbation_leakage_across_blocks"] = (across, None)
    log("    leakage: dependency map (jacobian)")
    maps, share = dependency_maps(
        run.model, batch, settings.dependency_examples, settings.dependency_max_len
    )
    length = maps[0].shape[0]
    prefix_length = int(batch["prefix_lengths"][0])
    attention_LxTxT = attention_maps(
        run.model, batch["inputs"][0, :length], length, prefix_length
    ).mean(axis=1)
    labels = [run.task.token_label(int(i)) for i in batch["inputs"][0, :length]]
    return Measurement(
        metrics={**metrics, "dependency_future_share": (share, None)},
        pictures={
            "dependency_map": maps[0].tolist(),
            "attention": attention_LxTxT.tolist(),
            "labels": labels,
            "prefix_length": prefix_length,
        },
    )
