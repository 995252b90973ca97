"""One training process per workdir, and one eval: lock files naming their holders.

A second `train.py` on the same workdir refuses at once and says who holds it; so does a second
`eval.py` (`hold(workdir, eval_lock=True)`: an eval may run beside training, not beside another
eval, whose report it would overwrite). A lock whose process is dead (SIGKILL, a crash, a
reboot) is taken over with a one-line note.
"""

import contextlib
import json
import os
import socket
import sys
import time

from training import run_folder


class WorkdirInUseError(FileExistsError):
    """Another live process holds the workdir's lock."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # Someone else's process.
    return True


def _holder(path: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}  # Written half-way by a process that died at once: stale.


def _stale(holder: dict) -> bool:
    if holder.get("host") not in (None, socket.gethostname()):
        return False  # A process on another machine: cannot be checked from here.
    return not isinstance(holder.get("pid"), int) or not _alive(holder["pid"])


def _describe(holder: dict) -> str:
    if not all(holder.get(key) for key in ("pid", "host")):
        return "a process that died while writing it (the lock file is unreadable)"
    return (
        f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('started')} "
        f"({holder.get('command')})"
    )


def _in_use(path: str, holder: dict) -> WorkdirInUseError:
    return WorkdirInUseError(
        f"{os.path.dirname(path)} is in use by {_describe(holder)}. Wait for it or stop it; if "
        f"that process is gone, delete {path}."
    )


def check_free(workdir: str) -> None:
    """Raises WorkdirInUseError if a live process holds the workdir's lock.

    Called before anything else is checked: while a run is live, its workdir is in use, and
    that (not, say, a config that differs from the live run's) is what a second start is told.
    """
    path = run_folder.lock_path(workdir)
    if os.path.exists(path) and not _stale(holder := _holder(path)):
        raise _in_use(path, holder)


def _take(path: str, me: dict) -> None:
    """Creates the lock file atomically, or raises WorkdirInUseError naming the live holder."""
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _holder(path)
            if not _stale(holder):
                raise _in_use(path, holder) from None
            print(f"note: taking over the lock {path} of {_describe(holder)}; that process "
                  "is no longer running.", file=sys.stderr)  # fmt: skip
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        return
    raise WorkdirInUseError(f"Could not take the lock {path}; another process keeps taking it.")


@contextlib.contextmanager
def hold(workdir: str, *, eval_lock: bool = False):
    """Holds <workdir>/.lock (or, for an eval, <workdir>/.eval-lock) for the block; the workdir
    must exist."""
    path = run_folder.eval_lock_path(workdir) if eval_lock else run_folder.lock_path(workdir)
    me = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv)),
    }
    _take(path, me)
    try:
        yield
    finally:
        if _holder(path).get("pid") == me["pid"]:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
