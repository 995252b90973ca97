"""Block diffusion's KV cache against none, at long rows: python -m benchmarks.diffusion_cache
[--total_len=1024 --block_size=16 --steps=4 --rounds=5].

A `block_causal` model (random weights: the cost does not depend on them) samples one row of
`--prompt_len` prompt tokens and `--total_len` - `--prompt_len` target tokens, block by block,
`--steps` denoising steps a block (model/diffusion_sampling.py): with the cache, a step feeds only
the current block and a finished block is written once; without it, every step runs the whole row
[prompt, finished blocks, current block]. Both run in one process, alternating, `--repeats` calls
each after a compiling one; each round prints both medians and the ratio (no cache over cache),
then the min, median and max of the ratio over the rounds, and whether both gave the same tokens
(the cache is exact; the most-confident-first sampler at temperature 0, so no float difference
in a random draw can tell them apart).

Measured (2026-12-07, this 2-core CPU, beside two trainings, so both sides slower than alone):
  python -m benchmarks.diffusion_cache --rounds=3 --repeats=2                      # 789 s
At 1,024 tokens (16 prompt, blocks of 16, 4 steps a block, 4 layers of d_model 128): the cache
2.2-2.6 s a call, none 102-107 s; no cache over cache 40.4x (min), 41.4x (median), 47.4x (max),
the same tokens. Not yet on a quiet CPU.
"""

import launch

launch.configure_xla_cpu()  # Before JAX starts its backend.

import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
from absl import flags  # noqa: E402

from data import vocab  # noqa: E402
from model import ModelConfig, diffusion_generate, make_decoder  # noqa: E402

_TOTAL = flags.DEFINE_integer("total_len", 1024, "Prompt + target tokens.", lower_bound=2)
_PROMPT = flags.DEFINE_integer("prompt_len", 16, "Prompt tokens.", lower_bound=1)
_BLOCK = flags.DEFINE_integer("block_size", 16, "Tokens per block.", lower_bound=1)
_STEPS = flags.DEFINE_integer("steps", 4, "Denoising steps per block.", lower_bound=1)
_LAYERS = flags.DEFINE_integer("num_layers", 4, "Layers.", lower_bound=1)
_D_MODEL = flags.DEFINE_integer("d_model", 128, "Model width.", lower_bound=8)
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed calls per side and round.", lower_bound=1)
_ROUNDS = flags.DEFINE_integer("rounds", 5, "Alternating rounds.", lower_bound=1)


def _timed(call) -> tuple[float, np.ndarray]:
    """(median seconds over --repeats calls, the tokens of the last)."""
    runs, tokens = [], None
    for _ in range(_REPEATS.value):
        start = time.perf_counter()
        tokens = np.asarray(jax.block_until_ready(call().tokens_BxL))
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), tokens


def main(argv: list[str]) -> None:
    del argv
    if _PROMPT.value >= _TOTAL.value:
        raise ValueError(f"--prompt_len={_PROMPT.value} must be below --total_len={_TOTAL.value}")
    cfg = ModelConfig(
        vocab_size=vocab.FIRST_SYMBOL + 256, max_len=_TOTAL.value, num_layers=_LAYERS.value,
        d_model=_D_MODEL.value, num_heads=4, d_ff=4 * _D_MODEL.value,
        attention_mask_kind="block_causal", block_size=_BLOCK.value,
    )  # fmt: skip
    model = make_decoder(cfg, 0)
    prompts = np.random.default_rng(0).integers(
        vocab.FIRST_SYMBOL, cfg.vocab_size, (1, _PROMPT.value)
    )
    target = _TOTAL.value - _PROMPT.value

    def sample(use_cache: bool):
        return diffusion_generate(
            model, prompts, [_PROMPT.value], [target], num_steps=_STEPS.value, mask_id=vocab.MASK,
            rng=jax.random.key(0), use_cache=use_cache, strategy="confidence", temperature=0.0,
        )  # fmt: skip

    for use_cache in (True, False):  # Compile both first.
        jax.block_until_ready(sample(use_cache).tokens_BxL)
    ratios, same = [], True
    for round_index in range(_ROUNDS.value):
        order = (True, False) if round_index % 2 == 0 else (False, True)
        seconds, tokens = {}, {}
        for use_cache in order:
            seconds[use_cache], tokens[use_cache] = _timed(lambda u=use_cache: sample(u))
        same = same and np.array_equal(tokens[True], tokens[False])
        ratios.append(seconds[False] / seconds[True])
        print(json.dumps({
            "round": round_index, "cache_s": round(seconds[True], 4),
            "no_cache_s": round(seconds[False], 4), "ratio": round(ratios[-1], 2),
        }), flush=True)  # fmt: skip
    print(json.dumps({
        "total_len": _TOTAL.value, "block_size": _BLOCK.value, "steps": _STEPS.value,
        "no_cache_over_cache": [round(min(ratios), 2), round(statistics.median(ratios), 2),
                                round(max(ratios), 2)],
        "same_tokens": same,
    }))  # fmt: skip


if __name__ == "__main__":
    launch.run(main)
