"""training/log_line.py: the interval's summary (mean loss, summed tokens, throughput, MFU), the
non-finite check that stops a run naming the step, and the console line."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from training import log_line


def _row(loss, step=1, **extra):
    return {
        "loss": loss,
        "loss_tokens": 10.0,
        "grad_norm": 0.5,
        "param_norm": 3.0,
        "learning_rate": 1e-3,
        "step": step,
        **extra,
    }


def test_the_summary_averages_the_loss_and_keeps_the_last_steps_norms():
    interval = log_line.Interval()
    interval.add([_row(1.0), _row(3.0, grad_norm=0.25)], seconds=0.5)
    line = interval.summary(tokens_per_step=100, flops_per_token=2.0, peak=1e3)
    assert line["loss"] == 2.0 and line["loss_tokens"] == 20.0 and line["grad_norm"] == 0.25
    assert line["step_time_s"] == 0.25 and line["tokens_per_s"] == 400.0
    assert line["mfu"] == pytest.approx(2.0 * 400.0 / (1e3 * jax.device_count()))
    assert "compile_time_s" not in line


def test_an_untimed_interval_has_no_throughput_but_says_its_compile_time():
    interval = log_line.Interval(rows=[_row(1.5)], compile_s=4.0)
    line = interval.summary(100, 2.0, 1e3)
    assert line["tokens_per_s"] is line["step_time_s"] is line["mfu"] is None
    assert line["compile_time_s"] == 4.0
    text = log_line.format_line("causal/seed_0", 1, 10, line)
    assert text.startswith("[causal/seed_0] step 1/10  loss 1.5000  lr 1.00e-03")
    assert "tokens/s" not in text and text.endswith("(first step 4.0 s with compile)")


def test_the_console_line_gives_throughput_once_timed():
    interval = log_line.Interval()
    interval.add([_row(1.0)], seconds=0.01)
    text = log_line.format_line("v/seed_1", 5, 10, interval.summary(100, 1.0, 1e9))
    assert "tokens/s 10,000  mfu " in text and "compile" not in text


class FakeManager:
    def __init__(self, latest):
        self.latest, self.waited = latest, False

    def wait_until_finished(self):
        self.waited = True

    def latest_step(self):
        return self.latest


def test_checked_rows_fetches_the_device_metrics_and_stops_at_the_first_non_finite_step():
    good = {key: jnp.float32(value) for key, value in _row(1.0).items()}
    rows = log_line.checked_rows([(1, good), (2, good)], FakeManager(None), "/runs/x")
    assert len(rows) == 2 and rows[1] == pytest.approx(_row(1.0))
    assert all(isinstance(value, float) for value in rows[0].values())
    bad = dict(good, grad_norm=jnp.float32(np.inf))
    manager = FakeManager(latest=4)
    with pytest.raises(FloatingPointError) as error:
        log_line.checked_rows([(5, good), (6, bad), (7, bad)], manager, "/runs/x")
    assert "at step 6 (loss=1.0, grad_norm=inf, param_norm=3.0)" in str(error.value)
    assert str(error.value).endswith("Last good checkpoint: step 4 in /runs/x/checkpoints.")
    assert manager.waited  # The save in flight is waited for before the run stops.
    with pytest.raises(FloatingPointError, match="Last good checkpoint: none."):
        log_line.checked_rows([(1, bad)], FakeManager(None), "/runs/x")
