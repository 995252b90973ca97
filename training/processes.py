"""One run over several processes: their start-up, and their agreement on what to run.

Start-up of several processes named by the environment is a rendezvous of our own before JAX's:
process 0 holds the coordinator port (so a port in use is refused at once, by name) until every
other process has said hello, and each side gives up after JAX_INITIALIZATION_TIMEOUT seconds
naming who is missing. JAX's own start-up would wait 300 s, then abort in a C++ stack dump.

Before training, every process checks that all of them planned the same runs
(`check_same_plan_everywhere`): processes started with different commands or configs stop at
once, naming the keys that differ, instead of training different things or hanging.
"""

import contextlib
import errno
import hashlib
import json
import os
import socket
import sys
import time
from collections.abc import Sequence

import jax
import numpy as np
from jax.experimental import multihost_utils

from sections import RunPlan

TIMEOUT_ENV = "JAX_INITIALIZATION_TIMEOUT"  # Seconds start-up waits for every process to join.
DEFAULT_TIMEOUT_S = 300  # jax.distributed.initialize's own default.
REPLY_GRACE_S = 5  # How much longer a process waits for process 0's verdict than for its turn.
CHECKS = (
    "check that every process was started with the same JAX_COORDINATOR_ADDRESS and "
    "JAX_NUM_PROCESSES, its own JAX_PROCESS_ID, and can reach that address"
)


def initialize_distributed(auto_detect: bool = False) -> None:
    """Starts JAX's multi-process runtime when this process is one of several.

    Either the environment names the cluster (JAX_COORDINATOR_ADDRESS=host:port, JAX_NUM_PROCESSES,
    JAX_PROCESS_ID, e.g. for several processes on one machine or a hand-made cluster), or
    `auto_detect` lets JAX find it (TPU pods, SLURM, Open MPI). Otherwise a no-op. On CPU the
    processes talk through gloo (JAX's default CPU collectives). Start-up waits at most
    $JAX_INITIALIZATION_TIMEOUT seconds (default 300) for every process, then raises a
    TimeoutError naming the missing ones; a coordinator port in use raises a ConnectionError.
    """
    timeout_s = _env_int(TIMEOUT_ENV, DEFAULT_TIMEOUT_S, minimum=1)
    if "JAX_COORDINATOR_ADDRESS" in os.environ:
        address = os.environ["JAX_COORDINATOR_ADDRESS"]
        num_processes = _env_int("JAX_NUM_PROCESSES", minimum=1)
        process_id = _env_int("JAX_PROCESS_ID", minimum=0)
        if process_id >= num_processes:
            raise ValueError(
                f"JAX_PROCESS_ID={process_id} must be below JAX_NUM_PROCESSES={num_processes}."
            )
        print(
            f"process {process_id} of {num_processes}: waiting up to {timeout_s} s for "
            f"{num_processes} processes to join at {address} (${TIMEOUT_ENV} sets the wait)",
            file=sys.stderr,
            flush=True,
        )
        gather_processes(address, num_processes, process_id, timeout_s)
        jax.distributed.initialize(
            coordinator_address=address,
            num_processes=num_processes,
            process_id=process_id,
            initialization_timeout=timeout_s,
        )
    elif auto_detect:
        jax.distributed.initialize(initialization_timeout=timeout_s)


def _env_int(name: str, default: int | None = None, minimum: int = 0) -> int:
    text = os.environ.get(name)
    if text is None and default is not None:
        return default
    if text is None or not text.strip().isdigit() or int(text) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum} (got {text!r}).")
    return int(text)


def _split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"JAX_COORDINATOR_ADDRESS={address!r} must be host:port.")
    return host.strip("[]"), int(port)


def gather_processes(address: str, num_processes: int, process_id: int, timeout_s: float) -> None:
    """Returns once all `num_processes` processes have met at `address` (process 0 listens there,
    the others connect); raises a TimeoutError naming who never came, on every process that came.

    Process 0 releases the port before returning, for JAX's coordinator to bind it.
    """
    host, port = _split_address(address)
    if num_processes == 1:
        return
    if process_id == 0:
        _hold_rendezvous(address, port, num_processes, timeout_s)
    else:
        _join_rendezvous(address, host, port, num_processes, process_id, timeout_s)


def _listen(port: int) -> socket.socket:
    """A listening socket on every interface at `port`, where JAX's coordinator will bind (its
    default, [::]:port); SO_REUSEADDR as gRPC sets it, so only a live listener makes it fail."""
    try:
        if socket.has_dualstack_ipv6():
            return socket.create_server(("", port), family=socket.AF_INET6, dualstack_ipv6=True)
        return socket.create_server(("", port))
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            message = f"process 0 cannot listen on coordinator port {port}: {error}"
            raise ConnectionError(message) from error
        raise ConnectionError(
            f"coordinator port {port} is already in use on process 0's host: stop what holds it "
            "(an earlier run?), or give every process a free port in JAX_COORDINATOR_ADDRESS."
        ) from error


def _send(conn: socket.socket, message: dict) -> None:
    with contextlib.suppress(OSError):  # That process went away; it will say so itself.
        conn.sendall(json.dumps(message).encode() + b"\n")


def _receive(conn: socket.socket, deadline: float) -> dict | None:
    """The peer's one JSON line; None if it closed, sent something else, or time ran out."""
    data = b""
    while not data.endswith(b"\n") and len(data) < 65536:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        conn.settimeout(left)
        try:
            chunk = conn.recv(4096)
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    try:
        message = json.loads(data)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


def _hold_rendezvous(address: str, port: int, num_processes: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    joined: dict[int, socket.socket] = {}
    error = None
    with _listen(port) as server:
        try:
            while len(joined) < num_processes - 1 and error is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                server.settimeout(left)
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    break
                hello = _receive(conn, min(deadline, time.monotonic() + REPLY_GRACE_S))
                their_id = hello.get("process_id") if hello else None
                if not isinstance(their_id, int):
                    conn.close()  # Not one of ours (a port scan, a stray client): ignore it.
                    continue
                if hello.get("num_processes") != num_processes:
                    error = (
                        f"process {their_id} was started with JAX_NUM_PROCESSES="
                        f"{hello.get('num_processes')}, process 0 with {num_processes}"
                    )
                elif their_id in joined or not 0 < their_id < num_processes:
                    error = f"two processes were started with JAX_PROCESS_ID={their_id}"
                if error is not None:
                    _send(conn, {"error": error})
                    conn.close()
                else:
                    joined[their_id] = conn
            if error is not None:
                for conn in joined.values():
                    _send(conn, {"error": error})
                raise ValueError(f"start-up at {address} refused: {error}; {CHECKS}.")
            missing = [i for i in range(1, num_processes) if i not in joined]
            for conn in joined.values():
                _send(conn, {"missing": missing})
            if missing:
                raise TimeoutError(_missing_line(missing, num_processes, address, timeout_s))
        finally:
            for conn in joined.values():
                conn.close()


def _missing_line(missing: list[int], num_processes: int, address: str, timeout_s: float) -> str:
    who = ", ".join(map(str, missing))
    return (
        f"start-up gave up after {timeout_s:g} s: process{'es' if len(missing) > 1 else ''} "
        f"{who} of {num_processes} never joined {address}; {CHECKS}."
    )


def _join_rendezvous(
    address: str, host: str, port: int, num_processes: int, process_id: int, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(
                f"start-up gave up after {timeout_s:g} s: process 0 (the coordinator) never "
                f"answered at {address}; check that it was started, with the same "
                f"JAX_COORDINATOR_ADDRESS, and that this host can reach it."
            )
        try:
            conn = socket.create_connection((host, port), timeout=min(left, 1.0))
        except OSError:  # Refused or unreachable: process 0 is not listening yet.
            time.sleep(min(0.1, left))
            continue
        with conn:
            _send(conn, {"process_id": process_id, "num_processes": num_processes})
            reply = _receive(conn, deadline + REPLY_GRACE_S)
        if reply is None:
            raise TimeoutError(
                f"start-up gave up: no answer at {address} within {timeout_s:g} s; either "
                f"process 0 is still waiting for others (see its output), or something other "
                f"than this run's process 0 holds port {port}."
            )
        if "error" in reply:
            raise ValueError(f"start-up at {address} refused: {reply['error']}; {CHECKS}.")
        if reply.get("missing"):
            raise TimeoutError(_missing_line(reply["missing"], num_processes, address, timeout_s))
        return


def check_same_plan_everywhere(plans: Sequence[RunPlan]) -> None:
    """Raises a ValueError on every process unless all processes planned the same runs (they ran
    different commands or configs), naming the keys that differ; a no-op for one process.

    Collective: every process must call it, with its plans, before training.
    """
    if jax.process_count() == 1:
        return
    text = json.dumps(flat_plans(plans), sort_keys=True, default=str)
    digest = np.frombuffer(hashlib.sha256(text.encode()).digest(), np.uint8)
    digests = np.asarray(multihost_utils.process_allgather(digest))
    if (digests == digests[0]).all():
        return
    # They differ: exchange the plans themselves (padded to one length) to name the keys.
    encoded = np.frombuffer(text.encode(), np.uint8)
    lengths = np.asarray(multihost_utils.process_allgather(np.array([encoded.size], np.int32)))
    padded = np.zeros(int(lengths.max()), np.uint8)
    padded[: encoded.size] = encoded
    gathered = np.asarray(multihost_utils.process_allgather(padded))
    everyone = [
        json.loads(row[: int(n)].tobytes()) for row, n in zip(gathered, lengths[:, 0], strict=True)
    ]
    raise ValueError(plan_mismatch_line(everyone))


def flat_plans(plans: Sequence[RunPlan]) -> dict[str, object]:
    """{"<variant>/seed_<s> <section>.<key>": value} over every run: what the processes compare."""
    flat = {}
    for run_plan in plans:
        run = "/".join(filter(None, (run_plan.variant, f"seed_{run_plan.seed}")))
        for section, values in run_plan.to_dict().items():
            if isinstance(values, dict):
                flat.update({f"{run} {section}.{key}": v for key, v in _flatten(values).items()})
            else:
                flat[f"{run} {section}"] = values
    return flat


def _flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def plan_mismatch_line(flat_per_process: Sequence[dict], shown: int = 3) -> str:
    """The one line that names the first `shown` keys on which the processes' plans differ."""
    missing = object()
    keys = sorted(set().union(*flat_per_process))
    first = flat_per_process[0]
    differing = [
        k for k in keys if any(f.get(k, missing) != first.get(k, missing) for f in flat_per_process)
    ]
    parts = []
    for key in differing[:shown]:
        by_value: dict[str, list[int]] = {}
        for process, flat in enumerate(flat_per_process):
            value = json.dumps(flat[key]) if key in flat else "absent"
            by_value.setdefault(value, []).append(process)
        parts.append(
            f"{key} is "
            + ", ".join(
                f"{value} on process{'es' if len(ids) > 1 else ''} {', '.join(map(str, ids))}"
                for value, ids in by_value.items()
            )
        )
    more = f" (and {len(differing) - shown} more keys)" if len(differing) > shown else ""
    return (
        f"the {len(flat_per_process)} processes planned different runs: {'; '.join(parts)}"
        f"{more}; every process must run the same command, with the same config and flags."
    )
