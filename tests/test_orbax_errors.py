"""training/orbax_errors.py: a failed save is one SaveFailedError line that says what to do, and
only the repeats and stray tracebacks that Orbax leaves behind are dropped."""

import asyncio
import errno
import logging
import os
import types

import pytest

from training import orbax_errors


class FakeManager:
    """What `save_errors` reads of an Orbax CheckpointManager."""

    def __init__(self, steps):
        self.directory, self.steps = "/runs/demo/checkpoints", steps

    def all_steps(self):
        return self.steps


@pytest.mark.parametrize(
    ("error", "kept", "says"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), [2, 4], "no space left on the device"),
        (ValueError("RESOURCE_EXHAUSTED: write failed " + "x" * 400), [], "no space left"),
        (PermissionError("denied"), [3], "permission denied"),
        (ValueError("a   long\n message"), [], "ValueError: a long message"),
    ],
)
def test_a_failed_save_becomes_one_line_that_says_where_it_resumes(error, kept, says):
    with (
        pytest.raises(orbax_errors.SaveFailedError) as raised,
        orbax_errors.save_errors(FakeManager(kept)),
    ):
        raise error
    message = str(raised.value)
    assert "\n" not in message and len(message) < 400 and raised.value.__cause__ is error
    assert message.startswith("Saving a checkpoint in /runs/demo/checkpoints failed: " + says)
    resumes = f"from step {max(kept)}, its newest checkpoint." if kept else "from the start."
    assert message.endswith("rerun the same command: it resumes " + resumes)


def test_a_save_failed_error_passes_through_unchanged():
    first = orbax_errors.SaveFailedError("already reported")
    with (
        pytest.raises(orbax_errors.SaveFailedError) as raised,
        orbax_errors.save_errors(FakeManager([])),
    ):
        raise first
    assert raised.value is first


def _record(name, pathname, func, level=logging.ERROR, msg="failed"):
    return logging.LogRecord(name, level, pathname, 1, msg, None, None, func=func)


def test_only_orbax_background_save_logs_are_dropped():
    orbax = os.path.join(os.sep, "site-packages", "orbax", "checkpoint")
    filters = {
        name: orbax_errors._DropBackgroundSaveLogs(repeats)
        for name, repeats in orbax_errors._BACKGROUND_SAVE_FILTERS.items()
    }  # Each logger's own filter, as quiet_background_save_errors installs them.
    repeats = [
        _record("absl", os.path.join(orbax, "future.py"), "run"),
        _record("absl", os.path.join(orbax, "checkpoint_manager.py"), "wait_until_finished"),
        _record(
            "asyncio", "tasks.py", "f", msg=f"Task exception was never retrieved {orbax}{os.sep}x"
        ),
    ]
    kept = [
        _record("absl", os.path.join(orbax, "future.py"), "run", level=logging.WARNING),
        _record("absl", os.path.join(orbax, "other.py"), "run"),  # Not a background save's.
        _record("absl", os.path.join(os.sep, "mine", "future.py"), "run"),  # Not Orbax.
        _record("asyncio", "tasks.py", "f", msg="Task exception was never retrieved elsewhere"),
    ]
    assert not any(filters[record.name].filter(record) for record in repeats)
    assert all(filters[record.name].filter(record) for record in kept)


def test_the_log_filters_are_installed_once():
    orbax_errors.quiet_background_save_errors()
    orbax_errors.quiet_background_save_errors()
    for name in ("absl", "asyncio"):
        filters = logging.getLogger(name).filters
        assert sum(isinstance(f, orbax_errors._DropBackgroundSaveLogs) for f in filters) == 1


def test_only_the_stray_errors_of_a_failed_restore_are_dropped():
    """TensorStore's late callback on the loop Orbax closed (and only it) is dropped."""
    loop = asyncio.new_event_loop()
    loop.close()
    try:
        loop.call_soon_threadsafe(print)
    except RuntimeError as error:
        late = error
    stray = types.SimpleNamespace(exc_value=late, exc_traceback=late.__traceback__, object=None)
    other = RuntimeError("Event loop is closed")  # Raised elsewhere: not TensorStore's callback.
    unrelated = types.SimpleNamespace(exc_value=other, exc_traceback=None, object=None)
    assert orbax_errors.is_stray_async_error(stray)
    assert not orbax_errors.is_stray_async_error(unrelated)
