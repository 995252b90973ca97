"""Train-step throughput and MFU: python -m benchmarks.train_step [--seq_len=256 ...].

Prints one JSON line per measurement: the dense fp32 matmul peak (the MFU denominator, measured
in the same process), the teacher_forcing step at the target shape (6 layers, d_model 512,
length 256, batch 16, fp32, byte vocabulary), and teacher_forcing vs sequential at length 64.
Step times are medians over --steps runs after one warm-up; compile time is reported apart.
XLA flags: launch.CPU_XLA_FLAGS, unless XLA_FLAGS sets the same flag (to compare flags).

Measured (2026-11-24, 2-core CPU, fp32; the peak, a 2048² fp32 matmul in the same run, 0.119
TFLOP/s): teacher forcing at length 256: 5.50 s a step, 745 tokens/s, MFU 77.6%; at length 64:
1.31 s, 783 tokens/s, 76.9%; sequential (free-running, KV cache, `lax.scan`) at length 64: 6.45 s,
159 tokens/s, 15.6%, so teacher forcing trains 4.9x the tokens/s (compile 5.3 s / 7.4 s). The two
objectives do the same FLOPs; on two cores the parallel pass only wins by using them better. On an
H100 (2026-11-24, `python -m benchmarks.train_step`, one run; JAX 0.11.2, XLA's default TF32
matmuls): teacher forcing at length 256 takes 12.5 ms (47% of the 85.5 TFLOP/s a 2048² fp32 matmul
reached); at length 64 teacher forcing 5.0 ms vs sequential 69.3 ms (14.0x). Again on an H100 on
2026-11-26 (`scripts/gpu_checks.sh`, which runs `python -m benchmarks.train_step --dtype=float32`;
one run, peak 112.2 TFLOP/s): 8.7 ms at length 256 (MFU 52%); at length 64 4.6 ms vs sequential
67.7 ms (14.8x).

The diffusion study's candidates (issue #32; `--study=diffusion`: experiments/diffusion.py's
shape, data and recipe, AR, MDLM and BD3 blocks of 4 and 16 side by side, `--steps` updates each
a round, alternating; each one's step time against AR's per token, min / median / max over the
rounds). Measured 2026-12-07 on this 2-core CPU, each run beside a translation training (so
every figure is contended; the ratios hold better than the times), `--steps=5 --rounds=3`,
alternating the commit before (4d46afb, its script patched to count FLOPs as it did) with the
one after in two pairs; medians of the ratio to AR:
  before: MDLM 2.21x / 2.03x, block 4 3.58x / 3.29x, block 16 3.66x / 3.88x
  after:  MDLM 1.07x, block 4 2.09x, block 16 2.12x (the first after-run failed: the tree was
          being edited; the second ran beside this session's tests too)
and a third pair later, beside one training only (after at 602fa96, then before; 57 s and 71 s,
compiled programs from the cache): after MDLM 0.96x, block 4 1.99x, block 16 2.14x; before
1.85x, 2.96x, 3.05x.
Where the time went: MDLM's length head ran the whole model a second time over every row (its
prompt is BOS alone), now one column (`Decoder.length_logits`); block diffusion's clean copy
ran its last layer and the LM head, whose outputs nothing reads, now keys and values only
(`logits_from`). Model FLOPs per step (the objective's count, `Objective.step_flops`): AR 10.9
G, MDLM 11.1 G, BD3 20.9 G (two copies less the skipped layer), so BD3 runs at about AR's
FLOPs per second. Targets: MDLM <= 1.15x, BD3 <= 2.2x.

At the translation shape (an encoder-decoder, issue #31) the useful tokens per second before and
after training without waste are `python -m benchmarks.translation_step`'s (its docstring has
the run): on 2026-12-07, this 2-core CPU, one run alternating the two layouts, the split layout
with token-count batches gave 2.57x (min), 2.84x (median), 3.07x (max) the one-row layout's
useful tokens/s (4,053-4,694 against 1,532-1,644).
"""

import launch

launch.configure_xla_cpu()  # Before JAX starts its backend.

import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from absl import flags  # noqa: E402

from benchmarks.steps import run_steps  # noqa: E402
from data import make_task, vocab  # noqa: E402
from experiments import diffusion  # noqa: E402
from model import ModelConfig, architecture_of  # noqa: E402
from objectives import objective_of  # noqa: E402
from plan import make_plan  # noqa: E402
from sections import default_train_config  # noqa: E402
from training import metrics  # noqa: E402
from training.step import (  # noqa: E402
    Hyperparams,
    bind_train_step,
    init_train_state,
    train_step,
)

BYTE_VOCAB = vocab.vocab_size(vocab.NUM_BYTES)  # 256 bytes + the special tokens.


def _batch(batch_size: int, seq_len: int, vocab_size: int) -> dict[str, jax.Array]:
    """Random full-length rows: every position is a real token with a loss."""
    rng = np.random.default_rng(0)
    tokens = rng.integers(5, vocab_size, size=(batch_size, seq_len + 1), dtype=np.int32)
    return {
        "inputs": jnp.asarray(tokens[:, :-1]),
        "targets": jnp.asarray(tokens[:, 1:]),
        "loss_mask": jnp.ones((batch_size, seq_len), jnp.float32),
        "lengths": jnp.full((batch_size,), seq_len, jnp.int32),
        "prefix_lengths": jnp.full((batch_size,), seq_len // 2, jnp.int32),
    }


def measure_step(
    cfg: ModelConfig, batch_size: int, seq_len: int, objective: str, steps: int, peak: float
) -> dict:
    """Compile time, median step time, tokens/s and MFU of one objective's train step."""
    hparams = Hyperparams.from_config(default_train_config())  # Values do not change the cost.
    graphdef, params, opt_state = init_train_state(cfg, hparams, 0)
    batch = _batch(batch_size, seq_len, cfg.vocab_size)
    key = jax.random.key(0)
    start = time.perf_counter()
    compiled = train_step.lower(
        graphdef, params, opt_state, batch, 0, key, hparams, objective=objective
    ).compile()
    compile_s = time.perf_counter() - start
    times = []
    for step in range(steps + 1):  # The first run warms up (allocations, caches).
        start = time.perf_counter()
        params, opt_state, step_metrics = compiled(params, opt_state, batch, step, key, hparams)
        jax.block_until_ready(step_metrics)
        times.append(time.perf_counter() - start)
    step_s = float(np.median(times[1:]))
    tokens_per_s = batch_size * seq_len / step_s
    flops_per_token = architecture_of(cfg).train_flops_per_token(cfg, seq_len)
    return {
        "measurement": f"train_step/{objective}",
        "num_layers": cfg.num_layers,
        "d_model": cfg.d_model,
        "seq_len": seq_len,
        "batch_size": batch_size,
        "dtype": cfg.dtype,
        "compile_s": round(compile_s, 2),
        "step_s": round(step_s, 4),
        "tokens_per_s": round(tokens_per_s, 1),
        "model_tflops_per_s": round(flops_per_token * tokens_per_s / 1e12, 4),
        "mfu": round(flops_per_token * tokens_per_s / peak, 4),
        "loss": round(float(step_metrics["loss"]), 4),
    }


_NUM_LAYERS = flags.DEFINE_integer("num_layers", 6, "Decoder layers.", lower_bound=1)
_D_MODEL = flags.DEFINE_integer("d_model", 512, "Model width.", lower_bound=1)
_NUM_HEADS = flags.DEFINE_integer("num_heads", 8, "Attention heads.", lower_bound=1)
_SEQ_LEN = flags.DEFINE_integer("seq_len", 256, "Tokens per row.", lower_bound=4)
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 16, "Rows per step.", lower_bound=1)
_DTYPE = flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "Compute dtype.")
_STEPS = flags.DEFINE_integer("steps", 5, "Timed steps; the median is reported.", lower_bound=1)
_SEQUENTIAL_SEQ_LEN = flags.DEFINE_integer(
    "sequential_seq_len", 64, "Length for teacher forcing vs sequential; 0 skips it.", lower_bound=0
)
_MATMUL_SIZE = flags.DEFINE_integer("matmul_size", 2048, "Peak-FLOP/s matmul size.", lower_bound=1)
_STUDY = flags.DEFINE_enum(
    "study", "", ["", "diffusion"],
    "diffusion: the diffusion study's train steps side by side (AR, MDLM, BD3), alternating.",
)  # fmt: skip
_ROUNDS = flags.DEFINE_integer("rounds", 5, "Alternating rounds of --study.", lower_bound=1)
_SIZE = flags.DEFINE_enum(
    "size", "cpu", ["cpu", "gpu"], "--study's size: experiments/diffusion.py's get_config(size)."
)


def diffusion_study(steps: int, rounds: int, size: str = "cpu") -> None:
    """experiments/diffusion.py's candidates (its shape, data and recipe at `size`), `steps`
    updates each a round, alternating: each variant's median step time and its ratio to AR's
    per token (every variant trains on the same rows), min / median / max over the rounds."""
    config = diffusion.get_config(size)
    names = ("ar", "mdlm", "bd3_block4", "bd3_block16")
    runs = {}
    for name in names:
        plan = make_plan(config, name, 0)
        task = make_task(plan.data)
        hparams = Hyperparams.from_config(plan.train)
        graphdef, params, opt_state = init_train_state(plan.model, hparams, 0)
        batches = [task.batch(step, plan.train.batch_size) for step in range(steps)]
        flops = objective_of(plan.train.objective).step_flops(
            architecture_of(plan.model), plan.model, batches[0]
        )
        runs[name] = (bind_train_step(graphdef, plan.train.objective), [params, opt_state],
                      batches, hparams, flops)  # fmt: skip
        run_steps(*runs[name][:4])  # Compiles.
    seconds = {name: [] for name in names}
    for _ in range(rounds):
        for name in names:
            seconds[name].append(run_steps(*runs[name][:4]) / steps)
    for name in names:
        ratios = [s / a for s, a in zip(seconds[name], seconds["ar"], strict=True)]
        B, T = runs[name][2][0]["inputs"].shape
        print(json.dumps({
            "measurement": f"train_step/diffusion_study/{name}",
            "batch_size": B, "seq_len": T, "rounds": rounds, "steps": steps,
            "step_ms": [round(1000 * s, 1) for s in seconds[name]],
            "tokens_per_s": round(B * T / float(np.median(seconds[name])), 1),
            "model_gflop_per_step": round(runs[name][4] / 1e9, 2),
            "time_per_token_over_ar": {
                "min": round(min(ratios), 3), "median": round(float(np.median(ratios)), 3),
                "max": round(max(ratios), 3),
            },
            "load_1min": round(os.getloadavg()[0], 2),
        }), flush=True)  # fmt: skip


def main(argv: list[str]) -> None:
    del argv
    args = flags.FLAGS
    if args.study == "diffusion":
        diffusion_study(args.steps, args.rounds, args.size)
        return
    peak = metrics.measure_peak_flops(args.matmul_size, repeats=10)
    print(json.dumps({
        "measurement": "peak/dense_matmul_fp32",
        "size": args.matmul_size,
        "tflops_per_s": round(peak / 1e12, 4),
        "device": str(jax.devices()[0].device_kind),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }), flush=True)  # fmt: skip
    cfg = ModelConfig(
        vocab_size=BYTE_VOCAB,
        d_model=args.d_model,
        num_heads=args.num_heads,
        num_layers=args.num_layers,
        d_ff=4 * args.d_model,
        max_len=max(args.seq_len, args.sequential_seq_len),
        dtype=args.dtype,
    )
    shape = (args.batch_size, args.seq_len)
    print(json.dumps(measure_step(cfg, *shape, "teacher_forcing", args.steps, peak)), flush=True)
    if args.sequential_seq_len:
        short = (args.batch_size, args.sequential_seq_len)
        parallel = measure_step(cfg, *short, "teacher_forcing", args.steps, peak)
        print(json.dumps(parallel), flush=True)
        sequential = measure_step(cfg, *short, "sequential", max(args.steps // 2, 2), peak)
        print(json.dumps(sequential), flush=True)
        print(json.dumps({
            "measurement": "ratio/teacher_forcing_over_sequential_tokens_per_s",
            "seq_len": args.sequential_seq_len,
            "ratio": round(parallel["tokens_per_s"] / sequential["tokens_per_s"], 2),
        }), flush=True)  # fmt: skip


if __name__ == "__main__":
    launch.run(main)
