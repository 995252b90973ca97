"""How Orbax's failures reach people: a failed background save as one `SaveFailedError` line
that says what to do, and the repeats of it (Orbax's logs from each thread, asyncio's "never
retrieved") and the stray tracebacks a failed save or restore leaves behind, dropped.

training/checkpoints.py saves and restores through these; evaluation/checkpoint_history.py
quiets its reads the same way.
"""

import asyncio.base_events
import contextlib
import errno
import logging
import os
import sys
import warnings

import orbax.checkpoint as ocp


class SaveFailedError(OSError):
    """A checkpoint could not be written (a full disk, a folder made read-only, quota)."""


@contextlib.contextmanager
def save_errors(manager: ocp.CheckpointManager):
    """Turns the error of a failed background save (Orbax re-raises it in the main thread, as
    an OSError or a TensorStore ValueError) into one SaveFailedError that says what to do."""
    try:
        yield
    except Exception as error:
        if isinstance(error, SaveFailedError):
            raise
        # The failed save abandons Orbax's pending write coroutines; when they are collected at
        # exit Python warns "coroutine ... was never awaited" under the one line (seen in a CI
        # run under load). The error below already says what happened.
        warnings.filterwarnings("ignore", r"coroutine .* was never awaited", RuntimeWarning)
        kept = manager.all_steps()
        raise SaveFailedError(
            f"Saving a checkpoint in {manager.directory} failed: {_save_failure(error)}. Free "
            "disk space (or make the folder writable), then rerun the same command: it resumes "
            + (f"from step {max(kept)}, its newest checkpoint." if kept else "from the start.")
        ) from error


def _save_failure(error: Exception) -> str:
    """What went wrong, in a few words: TensorStore's messages run to 500 characters."""
    text = " ".join(str(error).split())
    if getattr(error, "errno", None) == errno.ENOSPC or "RESOURCE_EXHAUSTED" in text:
        return "no space left on the device"
    if isinstance(error, PermissionError) or "PERMISSION_DENIED" in text:
        return "permission denied"
    return f"{type(error).__name__}: {text[:200]}"


# Orbax logs the failure of a background save, with its traceback, from each thread it passes
# through (below), then re-raises it in the main thread, where `save_errors` reports it in one
# line: these logs repeat that error. (module file, function) of each.
_BACKGROUND_SAVE_LOGS = {
    ("future.py", "run"),  # _SignalingThread.run() raised an exception.
    ("async_checkpointer.py", "_thread_func"),  # Failed to run ... Handler Commit operations.
    ("checkpoint_manager.py", "wait_until_finished"),  # Save Finalize thread failed.
}


def _orbax_background_save(record: logging.LogRecord) -> bool:
    """Orbax's own report, through absl, of a failed background save."""
    where = (os.path.basename(record.pathname), record.funcName)
    return f"{os.sep}orbax{os.sep}" in record.pathname and where in _BACKGROUND_SAVE_LOGS


def _orbax_task_never_retrieved(record: logging.LogRecord) -> bool:
    """asyncio's report of an Orbax write task whose error Orbax already re-raised."""
    text = record.getMessage()  # Names the task's Orbax coroutine, or its tmp folder.
    orbax = (f"{os.sep}orbax{os.sep}checkpoint{os.sep}", ".orbax-checkpoint-tmp")
    return "exception was never retrieved" in text and any(o in text for o in orbax)


# Each logger that repeats a failed save, and how to tell its record of one.
_BACKGROUND_SAVE_FILTERS = {"absl": _orbax_background_save, "asyncio": _orbax_task_never_retrieved}


class _DropBackgroundSaveLogs(logging.Filter):
    """Drops the error records `repeats` recognises; a filter of one logger."""

    def __init__(self, repeats):
        super().__init__()
        self.repeats = repeats

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.ERROR or not self.repeats(record)


def quiet_background_save_errors() -> None:
    """Filters those records out of absl's and asyncio's loggers (once per process)."""
    for name, repeats in _BACKGROUND_SAVE_FILTERS.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropBackgroundSaveLogs) for f in logger.filters):
            logger.addFilter(_DropBackgroundSaveLogs(repeats))


def is_stray_async_error(unraisable) -> bool:
    """Whether an unraisable exception is one of the two that a failed Orbax restore or save
    leaves behind (see `quiet_late_read_callbacks`)."""
    error, tb = unraisable.exc_value, unraisable.exc_traceback
    code = getattr(unraisable.object, "cr_code", None)
    if code is not None and f"{os.sep}orbax{os.sep}" in code.co_filename:
        return True  # A coroutine of a failed save, never finished, closed at exit.
    if not (isinstance(error, RuntimeError) and str(error) == "Event loop is closed"):
        return False
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_code.co_filename == asyncio.base_events.__file__


def quiet_late_read_callbacks() -> None:
    """Drops the stray tracebacks of a failed restore or save, and only those.

    Orbax runs a restore (or a save's writes) in a fresh asyncio loop (asyncio_utils.run_sync),
    with every array's TensorStore read or write in flight at once. When one fails, Orbax's
    coroutine raises and Orbax closes that loop while TensorStore's threads still have the
    others in flight; as each one finishes, TensorStore calls `loop.call_soon_threadsafe` on
    the closed loop, which raises RuntimeError("Event loop is closed"), and Python prints it
    through sys.unraisablehook: one traceback per array. A failed save also leaves Orbax
    coroutines unfinished, which Python closes at exit with a traceback each. Nothing waits
    for any of them (the failure itself is reported), so they are dropped; every other
    unraisable exception still reaches the previous hook.
    """
    previous = sys.unraisablehook
    if getattr(previous, "drops_stray_async_errors", False):
        return

    def hook(unraisable) -> None:
        if not is_stray_async_error(unraisable):
            previous(unraisable)

    hook.drops_stray_async_errors = True
    sys.unraisablehook = hook
