"""Model FLOPs and MFU, the peak-FLOP/s benchmark, and the metrics writer (jsonl + TensorBoard).

MFU = (model FLOPs per token x tokens per second) / (peak FLOP/s per device x devices), with
    FLOPs per token = 6 * N + 12 * L * T * D
(Kaplan et al. 2020; PaLM, appendix B). N counts the weights of the matmuls (attention and MLP
projections of every layer, and the LM head); the embedding lookups are gathers, not FLOPs.
6 = 2 (multiply-add) x 3 (forward, then backward for activations and for weights). The second
term is the attention scores Q.K^T and their use on V: 2 matmuls of 2*T*D FLOPs per token and
layer, times 3. Masked-out entries are counted too: XLA computes the full T x T product. Padding
positions count as tokens, since they are computed.
"""

import json
import math
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import tensorboardX

from model import ModelConfig
from training import run_folder

_PEAK_FLOPS_CACHE: dict[int, float] = {}


def matmul_params(cfg: ModelConfig) -> int:
    """The number of weights that take part in matmuls (all but embeddings, biases and norms)."""
    per_layer = 4 * cfg.d_model * cfg.d_model + 2 * cfg.d_model * cfg.d_ff
    if cfg.architecture == "encoder_decoder":
        # Every position runs through both stacks (one row holds source and target), and the
        # decoder's cross-attention projects queries, keys, values and outputs (4 d^2).
        per_layer = 2 * per_layer + 4 * cfg.d_model * cfg.d_model
    return cfg.num_layers * per_layer + cfg.d_model * cfg.vocab_size


def train_flops_per_token(cfg: ModelConfig, seq_len: int) -> float:
    """Forward + backward FLOPs per token position (module docstring)."""
    stacks = 3 if cfg.architecture == "encoder_decoder" else 1  # Encoder, self and cross.
    return 6.0 * matmul_params(cfg) + 12.0 * stacks * cfg.num_layers * seq_len * cfg.d_model


def measure_peak_flops(size: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of a dense fp32 [size, size] matmul on one device: median of `repeats` runs.

    Cached per process and size. The achievable dense-matmul rate, not the datasheet's.
    """
    if size in _PEAK_FLOPS_CACHE:
        return _PEAK_FLOPS_CACHE[size]
    a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32)
    matmul = jax.jit(lambda x, y: x @ y)
    matmul(a, a).block_until_ready()  # Compile and warm up.
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a, a).block_until_ready()
        times.append(time.perf_counter() - start)
    _PEAK_FLOPS_CACHE[size] = 2.0 * size**3 / float(np.median(times))
    return _PEAK_FLOPS_CACHE[size]


def mfu(flops_per_token: float, tokens_per_s: float, peak_flops_per_device: float) -> float:
    """Model FLOP/s utilisation over all devices."""
    return flops_per_token * tokens_per_s / (peak_flops_per_device * jax.device_count())


def first_non_finite(rows: list[dict[str, float]], keys: tuple[str, ...]) -> int | None:
    """Index of the first row where one of `keys` is NaN or infinite, else None."""
    for i, row in enumerate(rows):
        if not all(math.isfinite(row[key]) for key in keys):
            return i
    return None


class MetricsWriter:
    """Appends one JSON object per line to metrics.jsonl (flushed) and mirrors it to TensorBoard.

    Only process 0 writes; the others hold a writer that does nothing, so callers need no checks.
    Lines after `keep_up_to_step` (written by a run that died before its next checkpoint, and
    about to be recomputed) are dropped, so a resumed run's file has each step once.
    """

    def __init__(self, run_dir: str, enabled: bool = True, keep_up_to_step: int = 0):
        self._file = None
        self._tensorboard = None
        if enabled:
            _truncate(run_folder.metrics_path(run_dir), keep_up_to_step)
            self._file = open(run_folder.metrics_path(run_dir), "a")  # noqa: SIM115
            self._tensorboard = tensorboardX.SummaryWriter(run_folder.tensorboard_dir(run_dir))

    def write(self, step: int, split: str, values: dict[str, Any]) -> None:
        """Writes {"step", "split", **values}; numbers go to TensorBoard as `<split>/<key>`."""
        if self._file is None:
            return
        row = {"step": step, "split": split, **values}
        # One line, then flush and fsync: a crash or SIGKILL loses at most the line being written.
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        for key, value in values.items():
            if isinstance(value, int | float):
                self._tensorboard.add_scalar(f"{split}/{key}", value, step)
        self._tensorboard.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._tensorboard.close()


def _truncate(path: str, keep_up_to_step: int) -> None:
    if not os.path.exists(path):
        return
    with open(path) as f:
        # A line cut short by a crash fails to parse and is dropped with the rest.
        kept = []
        for line in f:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                break
            if row["step"] <= keep_up_to_step:
                kept.append(line)
    with open(path, "w") as f:
        f.writelines(kept)
