"""The train log line: the step metrics queued on the device, fetched at a sync and checked for
NaN/inf (the first bad step stops the run, naming it and the last good checkpoint), then
summarised over the interval since the last line (loss averaged, throughput, MFU) and formatted
for the console.
"""

import dataclasses

import jax
import numpy as np

from training import checkpoints, run_folder
from training import metrics as metrics_lib

CHECKED_KEYS = ("loss", "grad_norm", "param_norm")


@dataclasses.dataclass
class Interval:
    """Host-side step metrics since the last log line, and the time the timed steps took."""

    rows: list[dict[str, float]] = dataclasses.field(default_factory=list)
    busy_s: float = 0.0
    timed_steps: int = 0
    compile_s: float | None = None  # The first step of the process: compile + run.

    def add(self, rows: list[dict[str, float]], seconds: float) -> None:
        self.rows += rows
        self.busy_s += seconds
        self.timed_steps += len(rows)

    def summary(self, tokens_per_step: int, flops_per_token: float, peak: float) -> dict:
        """The log line: loss averaged over the interval; norms and lr at its last step."""
        line = dict(self.rows[-1])
        line["loss"] = float(np.mean([row["loss"] for row in self.rows]))
        line["loss_tokens"] = float(np.sum([row["loss_tokens"] for row in self.rows]))
        line["tokens_per_s"] = line["step_time_s"] = line["mfu"] = None
        if self.timed_steps:
            line["step_time_s"] = self.busy_s / self.timed_steps
            line["tokens_per_s"] = tokens_per_step / line["step_time_s"]
            line["mfu"] = metrics_lib.mfu(flops_per_token, line["tokens_per_s"], peak)
        if self.compile_s:
            line["compile_time_s"] = self.compile_s
        return line


def checked_rows(pending: list, manager, run_dir: str) -> list[dict[str, float]]:
    """Fetches queued step metrics; raises FloatingPointError at the first non-finite step."""
    values = jax.device_get([metrics for _, metrics in pending])
    rows = [{key: float(v) for key, v in row.items()} for row in values]
    bad = metrics_lib.first_non_finite(rows, CHECKED_KEYS)
    if bad is not None:
        checkpoints.wait(manager)
        kept = manager.latest_step()
        raise FloatingPointError(
            f"Non-finite training metrics at step {pending[bad][0]} ("
            + ", ".join(f"{k}={rows[bad][k]}" for k in CHECKED_KEYS)
            + "); stopped without saving. Last good checkpoint: "
            + (f"step {kept} in {run_folder.checkpoint_dir(run_dir)}." if kept else "none.")
        )
    return rows


def format_line(name: str, step: int, num_steps: int, line: dict) -> str:
    """The console's train line of run `name` at `step` (throughput once a step was timed)."""
    text = (
        f"[{name}] step {step}/{num_steps}  loss {line['loss']:.4f}  "
        f"lr {line['learning_rate']:.2e}  grad_norm {line['grad_norm']:.3f}"
    )
    if line["tokens_per_s"] is not None:
        text += f"  tokens/s {line['tokens_per_s']:,.0f}  mfu {line['mfu']:.1%}"
    if line.get("compile_time_s"):
        text += f"  (first step {line['compile_time_s']:.1f} s with compile)"
    return text
