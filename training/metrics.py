"""Model FLOPs and MFU, the peak-FLOP/s benchmark, and the metrics writer (jsonl + TensorBoard).

MFU = (model FLOPs per token x tokens per second) / (peak FLOP/s per device x devices). Each
architecture counts its own FLOPs per token (`train_flops_per_token` on its class in model/:
6 N for the matmul weights plus the attention products, Kaplan et al. 2020; PaLM, appendix B).
Padding positions count as tokens, since they are computed.
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

from model import ModelConfig, architecture_of
from training import run_folder

_PEAK_FLOPS_CACHE: dict[int, float] = {}


def train_flops_per_token(cfg: ModelConfig, seq_len: int) -> float:
    """Forward + backward FLOPs per token position of a model of `cfg`, at `seq_len`."""
    return architecture_of(cfg).train_flops_per_token(cfg, seq_len)


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
