"""Sampling speed: `generate` (KV cache), `generate_no_cache`, and the peer, Hugging Face
transformers' GPT-2 `generate` at the same shape, one JSON line per run.

  python -m benchmarks.sampling                                  # tiny shape, cache vs no cache
  python -m benchmarks.sampling --decoders=kv_cache,hf --pairs=5 # side by side with HF, tiny
  python -m benchmarks.sampling --num_layers=12 --d_model=768 --num_heads=12 --d_ff=3072 \
      --vocab_size=50257 --new_tokens=112 --repeats=3 --decoders=kv_cache,hf --pairs=5  # GPT-2
  taskset -c 0 python -m benchmarks.sampling --decoders=kv_cache  # on one core (Linux)

Tiny shape: 4 layers, d_model 256, 4 heads, d_ff 1024, vocab 256; GPT-2 small as the last line;
both batch 8, prompt 16, greedy, fp32. tokens_per_s counts generated tokens only (batch_size *
new_tokens / median seconds); compile_s is the first call's wall time minus the median. `hf` needs
`pip install -r requirements-bench.txt` (random weights built from a GPT2Config; nothing is
downloaded), and times what ../shared/bench/hf_generate.py times.

--pairs=N: N rounds; in each, every decoder runs in a fresh process, the order reversed every
other round. Each run records `threads`, the threads it may use (this project's decoders: XLA's
pool, a thread per CPU the process may run on, every dot split over them; hf: torch's count),
`cores_used`, the cores it kept busy in its timed calls (its CPU time over their wall time), the
1-minute load average before it (`contended` above 0.3 per core) and `others_cpu`: the share of
the cores other processes kept busy during its timed calls (/proc/stat less its own CPU time).
The load average also counts this benchmark's own previous run (two threads for hf), so on 2
cores back-to-back runs are all `contended`; `others_cpu` < 5% in both runs of a round marks it
undisturbed. Neither sees other virtual machines on the same host, which share its memory
bandwidth: a GPT-2 small step streams 569 MB, so the figures drift by 10-25% from minute to
minute on a quiet machine, which is why only ratios within a round are compared. The table gives
min / median / max over the rounds of tokens/s and of the ratio to the last decoder.

Measured 2026-12-07 on a 2-core "Intel(R) Xeon(R) Processor" VM (lscpu: 4 MiB L2, 260 MiB L3),
nothing else running in it (others' CPU 0.00-0.01 in every run: all 5 rounds undisturbed; all
`contended` by the load rule, from the previous run), jax 0.10.2 with launch.py's flags, torch
2.14.1, transformers 5.25.0; the commands above (92 s and 343 s), then the `taskset -c 0` line at
each shape twice:

| shape | `generate`, 2 threads | cores used | HF, 2 threads | x HF | `generate`, 1 core |
| --- | --- | --- | --- | --- | --- |
| tiny | 4,267 / 4,385 / 4,651 | 1.86 | 2,083 / 2,316 / 2,347 | 1.86 / 1.91 / 2.10 | 2,670, 3,265 |
| GPT-2 | 128.7 / 136.7 / 140.8 | 1.79 | 131.3 / 132.7 / 135.6 | 0.97 / 1.01 / 1.06 | 91.5, 87.7* |

(tokens/s, min / median / max over 5 rounds; cores used, median; HF used 1.99; * disturbed by
a probe of this session, others' CPU 0.13.) `generate` uses both cores: XLA CPU splits each dot
over its pool whatever `--xla_cpu_multi_thread_eigen` says (jax 0.10.2; the README had said one
core), and two cores give 1.3-1.6x one. The tokens are the same on one core, on two, and with
YNNPACK's dots
(tests/test_launch.py::test_greedy_tokens_are_the_same_on_every_core_count_and_dot_library).
The same protocol earlier that day gave 1.81 / 1.88 / 2.16x and 0.97 / 1.07 / 1.09x, and with
YNNPACK's dots (below) 1.78 / 1.90 / 1.99x and 1.00 / 1.07 / 1.32x: the GPT-2 small ratio moves
by 0.06 from run to run, as the host's memory bandwidth does.

#34's targets are missed: 1.91x against 3x at the tiny shape (by 1.6x) and 1.01-1.07x against
1.5x at GPT-2 small (by 1.4-1.5x). What the profiles show (JAX profiler traces of `generate`
at GPT-2 small, per-op times of one decode step, and in-process ablations; same VM and day):
- The step is bound by memory traffic. It reads 494 MB of weights (12 layers of 28.3 MB, the
  LM head 154 MB) and a 75 MB KV cache (127 slots). In a traced step (Eigen's dots), each
  layer's four dots took 0.58, 0.30, 0.91 and 1.03 ms: 28.3 MB at 10 GB/s; the LM head with its
  argmax 13.4 ms by ablation (one layer with a vocabulary of 50,257 against 256): 11.5 GB/s.
  The fastest two-thread read of this VM was 14.5-16.2 GB/s (numpy sums of two 224 MB arrays,
  one a thread; 7.6-8.7 on one). At 16 GB/s a step would take 36 ms: 225 tokens/s, 1.7x HF's
  131 at best. 1.5x needs the whole step at 13-14 GB/s, 82-97% of that ceiling, where the dots
  reach 62-80% of it. HF's step (61 ms) loses the same way.
- Attention reads the cache as two multiply-reduces, whose products XLA CPU writes out whole
  and then reduces in windows of 32 (its tree-reduction rewrite): 7 ms of 59 by ablation (a
  step without it: 52 ms), 13% of a step traced with YNNPACK's dots. Batched dots instead (on
  one core: Eigen does not split batched matvecs) took 63 ms a step with Eigen's dots, 51-52
  with YNNPACK's (noise); more cache phases (2-4 rather than 1 for 111 steps, YNNPACK's dots)
  gave 151-159 tokens/s against 151.
- Other XLA CPU settings, one at a time against launch.py's (Eigen's dots; `XLA_FLAGS=FLAG python
  -m benchmarks.sampling --decoders=kv_cache` at each shape, alternating): each dot through
  YNNPACK alone (`--xla_cpu_experimental_ynn_fusion_type=individual_dot`) decodes 1.07x faster
  at GPT-2 small (1.06 / 1.07 / 1.10 over 4 pairs: 149-153 tokens/s against 138-142) and 1.07x
  at the tiny shape (0.96 / 1.07 / 1.14), the same tokens, but trains 1.09x and 1.36x slower at
  6 layers of d_model 512 (`python -m benchmarks.train_step --sequential_seq_len=0 --steps=3`,
  2 pairs: 3.99 and 4.79 s a step against 3.67 and 3.52), so it is not the default; a user who
  only decodes can set it. jax.jit's `compiler_options` can set it for one program, as
    {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"}
  (checked: the dots compile to YNNPACK); not done, since every decoder timed against AR would
  need it too, each measured. XLA's default YNN fusions (dots fused with their neighbours) were
  3.3x slower (44-46 tokens/s against 148-149); adding `reduce` to the YNN types 3.5x slower,
  `eltwise` 1.2x; oneDNN's dot fusions, Eigen's multi-threaded dots, 512-bit vectors, the
  concurrency-optimised scheduler and huge pages for malloc all within noise.
- The tiny shape is bound by the cache and by op count: a step (1.8 ms, Eigen's dots) runs
  about 150 XLA ops, a quarter of them windowed reductions; without attention it takes 1.0 ms,
  and the cache it reads (up to 255 slots, 4.2 MB a layer) leaves no room for the 1.16 ms a
  step that 3x needs.
- Tensor parallel over two forced host devices (commit dc8dcf2, removed after it: a `shard_map`
  over heads, MLP units and vocabulary, an all-reduce after attention and after the MLP) gave
  the same tokens at the tiny shape but wrong LM-head logits at GPT-2 small under launch.py's
  flags of the time (an XLA CPU fault in multi-device programs: prefill logits agreed to 4.4e-6,
  one device's block of 624 columns was off by about 3 from the 16th step). It has nothing to
  win now: on this quiet VM the LM head's dot on two devices streamed 11-12 GB/s at 1.8-1.9
  cores, against 13 GB/s at 1.98 cores on one device (the 2026-12-06 finding that the devices
  took turns was made with another engineer's jobs on the second core).
- Earlier, 2026-12-06, contended (another engineer's tests and training, load 1.2-8.6): 1.62x
  and 0.90x in undisturbed rounds; HF's two threads collapsed to 157 tokens/s at the tiny shape
  when another process held a core.

Earlier measurements, on a 2-core AMD EPYC of the CI kind (2026-11-24/26; JAX profiler traces), for
the design of `generate`: one `lax.while_loop` in one jitted program with the prompt prefilled
in one pass; a head-major cache (keys [B, H, K, S], values [B, H, S, K]; a decode step's
attention as two multiply-reduces along contiguous axes, 1.12x faster at batch 8 than batched
dots); cache writes as one in-place `dynamic_update_slice` shared by the batch; greedy skips the
top-k/top-p sort (`lax.cond`); Eigen dots rather than YNNPACK fusions (about 1.5x at batch 8);
the cache grows in phases (a step took 0.8-0.9 ms with 64 slots, 1.4-2.1 ms with 255); one
random key per step split before the loop. At 1024 total tokens (`--batch_size=1
--prompt_len=16 --new_tokens=1008 --repeats=3`), `generate` was 130x `generate_no_cache`. An H100
(2026-11-26, `scripts/gpu_checks.sh`): 54,062 tokens/s at the tiny shape, no cache 17,551.
"""

import launch

launch.configure_xla_cpu()

import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from evaluation.timing import call_seconds, median_seconds  # noqa: E402
from model import ModelConfig, generate, generate_no_cache, make_decoder  # noqa: E402
from model.sampling import cache_sizes  # noqa: E402

flags.DEFINE_integer("num_layers", 4, "Decoder layers.", lower_bound=1)
flags.DEFINE_integer("d_model", 256, "Model width.", lower_bound=1)
flags.DEFINE_integer("num_heads", 4, "Attention heads.", lower_bound=1)
flags.DEFINE_integer("d_ff", 1024, "MLP width.", lower_bound=1)
flags.DEFINE_integer("vocab_size", 256, "Vocabulary size.", lower_bound=1)
flags.DEFINE_integer("batch_size", 8, "Rows decoded together.", lower_bound=1)
flags.DEFINE_integer("prompt_len", 16, "Prompt tokens per row.", lower_bound=1)
flags.DEFINE_integer("new_tokens", 240, "Generated tokens per row.", lower_bound=1)
flags.DEFINE_integer("repeats", 5, "Timed runs per decoder; the median is reported.", lower_bound=1)
flags.DEFINE_list(
    "decoders",
    ["kv_cache", "no_cache"],
    "Which decoders to time: kv_cache (generate), no_cache, and hf (Hugging Face GPT-2 generate "
    "at the same shape; needs requirements-bench.txt).",
)
flags.DEFINE_integer(
    "cache_phases",
    None,
    "kv_cache: the cache grows in this many steps (default: generate's).",
    lower_bound=1,
)
flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "Compute and parameter dtype.")
flags.DEFINE_integer(
    "pairs",
    0,
    "0: time each decoder once, in this process. N > 0: N rounds in which each decoder runs in "
    "a process of its own, one after another (the order reversed every other round); then a "
    "table of each decoder's spread and of its ratio to the last decoder (hf, say) round by "
    "round.",
    lower_bound=0,
)
flags.DEFINE_float(
    "contended_load",
    0.3,
    "A run is flagged contended when the 1-minute load average before it exceeds this per core.",
)
FLAGS = flags.FLAGS
SHAPE_FLAGS = (
    "num_layers", "d_model", "num_heads", "d_ff", "vocab_size", "batch_size", "prompt_len",
    "new_tokens", "dtype",
)  # fmt: skip
# What a round's processes are given: the shape, and how to time it.
ROUND_FLAGS = SHAPE_FLAGS + ("repeats", "cache_phases", "contended_load")


def _usable_cpus() -> int:
    """The CPUs this process may run on (fewer than the machine's under `taskset`)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _jax_decoder(decode):
    """A decoder of this project on one device: (run, threads) for a config and prompts."""

    def build(cfg: ModelConfig, prompts_BxP: np.ndarray):
        model = make_decoder(cfg)
        kw = dict(max_new_tokens=FLAGS.new_tokens)
        if decode is generate:
            kw["cache_phases"] = FLAGS.cache_phases
        # XLA CPU's pool has a thread per CPU this process may run on, and each dot uses them all
        # (None on an accelerator, where the host's threads only launch its kernels).
        threads = _usable_cpus() if jax.default_backend() == "cpu" else None
        return lambda: decode(model, prompts_BxP, **kw), threads

    return build


def _hf(cfg: ModelConfig, prompts_BxP: np.ndarray):
    """The peer: transformers' GPT-2 `generate` at the same shape, random weights from a config
    (greedy, fp32, its KV cache), as ../shared/bench/hf_generate.py times it."""
    try:
        import torch
        import transformers
    except ImportError as error:
        message = f"--decoders=hf: {error}; pip install -r requirements-bench.txt"
        raise app.UsageError(message) from None
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        n_layer=cfg.num_layers, n_embd=cfg.d_model, n_head=cfg.num_heads, n_inner=cfg.d_ff,
        vocab_size=cfg.vocab_size, n_positions=cfg.max_len, attn_pdrop=0.0, resid_pdrop=0.0,
        embd_pdrop=0.0, bos_token_id=None, eos_token_id=None,  # No EOS: every row runs to the end.
    )  # fmt: skip
    model = transformers.GPT2LMHeadModel(config).eval()
    ids = torch.as_tensor(prompts_BxP)
    kw = dict(
        max_new_tokens=FLAGS.new_tokens, min_new_tokens=FLAGS.new_tokens, do_sample=False,
        use_cache=True, pad_token_id=0, attention_mask=torch.ones_like(ids),
    )  # fmt: skip

    def run():
        with torch.inference_mode():
            out = model.generate(ids, **kw)
        assert out.shape == (ids.shape[0], ids.shape[1] + FLAGS.new_tokens), out.shape

    return run, torch.get_num_threads()


DECODERS = {
    "kv_cache": _jax_decoder(generate),
    "no_cache": _jax_decoder(generate_no_cache),
    "hf": _hf,
}


def _busy_s() -> float | None:
    """CPU seconds the whole machine has been busy since boot (/proc/stat); None off Linux."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(t) for t in f.readline().split()[1:9]]
    except OSError:
        return None
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # Less idle, iowait.


def time_decoder(name: str, cfg: ModelConfig, prompts_BxP: np.ndarray) -> dict:
    """One run: the median of `repeats` calls after a first (compiling) one; the threads the
    decoder may use and the cores it kept busy in its timed calls (its CPU time over their wall
    time); the load average before it, and the share of the cores other processes kept busy
    during its timed calls."""
    run, threads = DECODERS[name](cfg, prompts_BxP)
    cores = os.cpu_count()
    load = os.getloadavg()[0]
    first_s = call_seconds(run)
    busy, own, start = _busy_s(), time.process_time(), time.perf_counter()
    median_s = median_seconds(run, FLAGS.repeats)
    wall, own = time.perf_counter() - start, time.process_time() - own
    others = None if busy is None else max(_busy_s() - busy - own, 0.0) / (wall * cores)
    return {
        "decoder": name,
        "tokens_per_s": round(prompts_BxP.shape[0] * FLAGS.new_tokens / median_s, 1),
        "median_s": round(median_s, 5),
        "compile_s": round(max(first_s - median_s, 0.0), 3),
        "threads": threads,
        "cores_used": round(own / wall, 2),
        "load_before": round(load, 2),
        "contended": load > FLAGS.contended_load * cores,
        "others_cpu": None if others is None else round(others, 3),
    }


def _config() -> ModelConfig:
    return ModelConfig(
        vocab_size=FLAGS.vocab_size, d_model=FLAGS.d_model, num_heads=FLAGS.num_heads,
        num_layers=FLAGS.num_layers, d_ff=FLAGS.d_ff,
        max_len=FLAGS.prompt_len + FLAGS.new_tokens, dtype=FLAGS.dtype, param_dtype=FLAGS.dtype,
    )  # fmt: skip


def time_here(names: list[str]) -> None:
    """Each decoder once, in this process; one JSON line each (and the cache's speed-up)."""
    cfg = _config()
    prompts_BxP = np.random.default_rng(0).integers(
        0, cfg.vocab_size, (FLAGS.batch_size, FLAGS.prompt_len)
    )
    shape = {name: FLAGS[name].value for name in SHAPE_FLAGS} | {"sampling": "greedy"}
    phases = cache_sizes(FLAGS.prompt_len, FLAGS.new_tokens, FLAGS.cache_phases)
    results = {}
    for name in names:
        results[name] = time_decoder(name, cfg, prompts_BxP)
        device = "torch:cpu" if name == "hf" else f"{jax.devices()[0].platform}"
        extra = {"kv_cache_sizes": phases} if name == "kv_cache" else {}
        print(json.dumps(results[name] | shape | extra | {"device": device}), flush=True)
    if {"kv_cache", "no_cache"} <= results.keys():
        speedup = results["no_cache"]["median_s"] / results["kv_cache"]["median_s"]
        print(json.dumps({"kv_cache_speedup_over_no_cache": round(speedup, 1)}), flush=True)


def time_in_rounds(names: list[str]) -> list[dict]:
    """`pairs` rounds; in each, every decoder in a fresh process, the order reversed every
    other round (so drift does not favour one side). Returns each run's JSON line."""
    shape_flags = [
        f"--{name}={FLAGS[name].value}" for name in ROUND_FLAGS if FLAGS[name].value is not None
    ]
    runs = []
    for round_ in range(FLAGS.pairs):
        for name in names if round_ % 2 == 0 else names[::-1]:
            command = [sys.executable, "-m", "benchmarks.sampling", f"--decoders={name}"]
            done = subprocess.run(command + shape_flags, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"{name} failed:\n{done.stderr[-2000:]}")
            runs.append(json.loads(done.stdout.splitlines()[-1]) | {"round": round_})
            print(json.dumps(runs[-1]), flush=True)
    return runs


def _spread(values: list[float], digits: int = 1) -> str:
    if not values:
        return "-"
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{low:,.{digits}f} / {mid:,.{digits}f} / {high:,.{digits}f}"


def _undisturbed(run: dict) -> bool:
    """Whether other processes kept under 5% of the cores busy during the run's timed calls (by
    the load rule where /proc/stat is missing). The load average also counts this benchmark's
    own previous run, so right after a two-thread run it is above 0.3 per core on 2 cores."""
    if run["others_cpu"] is None:
        return not run["contended"]
    return run["others_cpu"] < 0.05


def rounds_table(names: list[str], runs: list[dict]) -> str:
    """Markdown: each decoder's tokens/s and its ratio to the last decoder, min / median / max
    over all rounds and over the rounds in which no other process disturbed either run."""
    reference = names[-1]
    by_round = {}
    for run in runs:
        by_round.setdefault(run["round"], {})[run["decoder"]] = run
    quiet = [r for r, pair in by_round.items() if all(map(_undisturbed, pair.values()))]
    lines = [
        f"{len(by_round)} rounds, {len(quiet)} undisturbed (others' CPU < 5% in every run); "
        f"min / median / max; contended: load before the run > {FLAGS.contended_load} per core",
        "",
        f"| decoder | threads | cores used | tokens/s | x {reference} "
        f"| x {reference}, undisturbed rounds | load before | contended runs | others' CPU |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in names:
        mine = [pair[name] for pair in by_round.values()]
        ratios = {
            r: p[name]["tokens_per_s"] / p[reference]["tokens_per_s"] for r, p in by_round.items()
        }
        others = [x["others_cpu"] for x in mine if x["others_cpu"] is not None]
        lines.append(
            f"| {name} | {sorted({x['threads'] for x in mine})} "
            f"| {_spread([x['cores_used'] for x in mine], 2)} "
            f"| {_spread([x['tokens_per_s'] for x in mine])} "
            f"| {_spread(list(ratios.values()), 2)} | {_spread([ratios[r] for r in quiet], 2)} "
            f"| {_spread([x['load_before'] for x in mine], 2)} "
            f"| {sum(x['contended'] for x in mine)} of {len(mine)} | {_spread(others, 2)} |"
        )
    return "\n".join(lines)


def main(argv):
    del argv
    unknown = set(FLAGS.decoders) - DECODERS.keys()
    if unknown:
        raise app.UsageError(f"unknown decoders {sorted(unknown)}; choose from {list(DECODERS)}")
    if FLAGS.pairs == 0:
        time_here(FLAGS.decoders)
    else:
        print(rounds_table(FLAGS.decoders, time_in_rounds(FLAGS.decoders)), flush=True)


if __name__ == "__main__":
    launch.run(main)
