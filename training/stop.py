"""How a training run stops early without losing work: SIGTERM and Ctrl-C ask the loop to save a
checkpoint after the current step and return; a second Ctrl-C aborts at once (KeyboardInterrupt).

Multi-process runs leave SIGTERM to JAX's preemption service, so every process stops at the same
step (`multihost_utils.reached_preemption_sync_point`).
"""

import contextlib
import signal
import sys
import threading

import jax
from jax.experimental import multihost_utils

_requested: dict[str, str | None] = {"by": None}  # "SIGTERM" or "Ctrl-C" once asked.


def _on_sigterm(signum, frame) -> None:
    _requested["by"] = _requested["by"] or "SIGTERM"


def _on_sigint(signum, frame) -> None:
    if _requested["by"] == "Ctrl-C":  # The second Ctrl-C: stop now, without saving.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        raise KeyboardInterrupt
    _requested["by"] = "Ctrl-C"
    print(
        "\nCtrl-C: saving a checkpoint after this step, then stopping; press Ctrl-C again to "
        "abort at once.",
        file=sys.stderr,
        flush=True,
    )


@contextlib.contextmanager
def signals_request_stop():
    """While active, SIGTERM and the first Ctrl-C make `stop_requested` answer, instead of
    killing the process."""
    _requested["by"] = None
    if threading.current_thread() is not threading.main_thread() or jax.process_count() > 1:
        yield
        return
    previous = {
        sig: signal.signal(sig, handler)
        for sig, handler in ((signal.SIGTERM, _on_sigterm), (signal.SIGINT, _on_sigint))
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def stop_requested(step: int) -> str | None:
    """ "SIGTERM" or "Ctrl-C" when the run should save at `step` and return, else None."""
    if jax.process_count() > 1:
        # Every process must stop at the same step; JAX's preemption service agrees on one.
        return "SIGTERM" if multihost_utils.reached_preemption_sync_point(step) else None
    return _requested["by"]
