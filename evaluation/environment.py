"""Where a result came from: the device, the commit and the library versions."""

import importlib.metadata
import os
import platform
import subprocess

import jax

PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "matplotlib")


def _git(repo_dir: str, *args: str) -> str | None:
    try:
        return subprocess.run(
            ["git", *args], cwd=repo_dir, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def describe(repo_dir: str) -> dict:
    """{device, commit ("unknown" outside a git checkout), commit_dirty, versions}."""
    commit = _git(repo_dir, "rev-parse", "HEAD") or "unknown"
    dirty = None
    if commit != "unknown":
        dirty = bool(_git(repo_dir, "status", "--porcelain", "--untracked-files=no"))
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    versions["python"] = platform.python_version()
    devices = jax.devices()
    return {
        "device": {
            "platform": devices[0].platform,
            "kind": devices[0].device_kind,
            "count": len(devices),
            "host_cpu": platform.processor() or platform.machine(),
            "host_cores": os.cpu_count(),
        },
        "commit": commit,
        "commit_dirty": dirty,
        "versions": versions,
    }
