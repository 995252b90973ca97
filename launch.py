"""Process set-up shared by the entry points: XLA CPU flags, then (multi-host) JAX distributed.

Import this before anything runs a JAX computation: XLA reads XLA_FLAGS once, when the backend
starts. Flags the user already set win.
"""

import os

# Measured on the 2-core CI machine for small-batch decoding (README, "Speed"): Eigen's dots beat
# the experimental YNNPACK fusions at M = 8 (about 1.5x), and splitting tiny ops over threads
# costs more than it saves. Both only affect the CPU backend.
CPU_XLA_FLAGS = ("--xla_cpu_experimental_ynn_fusion_type=", "--xla_cpu_multi_thread_eigen=false")


def configure_xla_cpu() -> None:
    """Adds CPU_XLA_FLAGS to XLA_FLAGS, unless the user set the same flag already."""
    flags = os.environ.get("XLA_FLAGS", "")
    for flag in CPU_XLA_FLAGS:
        if flag.split("=")[0] not in flags:
            flags = f"{flags} {flag}".strip()
    os.environ["XLA_FLAGS"] = flags
