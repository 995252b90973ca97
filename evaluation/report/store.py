"""The report folder on disk: written atomically from a results dict, and results.json read back
(its schema: evaluation/report/schema.py)."""

import errno
import json
import os
import shutil
import tempfile

from evaluation.report.rendering import render
from evaluation.report.schema import SCHEMA_VERSION

STAGING_PREFIXES = (".report-tmp-", ".report-old-")


def _owner_alive(entry: str) -> bool:
    """Whether the eval that made staging folder `entry` (.report-tmp-<pid>-...) still runs."""
    prefix = next(p for p in STAGING_PREFIXES if entry.startswith(p))
    pid, _, rest = entry.removeprefix(prefix).partition("-")
    if not (pid.isdigit() and rest):
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_leftovers(final: str) -> None:
    """Staging folders of an earlier eval that died (not those of one still running); a report
    it had moved aside goes back."""
    parent = os.path.dirname(final)
    for entry in sorted(os.listdir(parent)):
        path = os.path.join(parent, entry)
        if not (entry.startswith(STAGING_PREFIXES) and os.path.isdir(path)):
            continue
        if _owner_alive(entry):
            continue
        moved_aside = os.path.join(path, "report")
        # An eval that died between its two renames left the only report in a .report-old-*.
        if os.path.isdir(moved_aside) and not os.path.exists(final):
            os.replace(moved_aside, final)
        shutil.rmtree(path, ignore_errors=True)


def _stage(parent: str, files: dict[str, str | bytes]) -> str:
    """A complete report folder (mode 0755, files 0644) beside the final one; its path."""
    staging = tempfile.mkdtemp(prefix=f"{STAGING_PREFIXES[0]}{os.getpid()}-", dir=parent)
    try:
        os.chmod(staging, 0o755)
        for name, content in files.items():
            path = os.path.join(staging, name)
            if isinstance(content, bytes):
                with open(path, "wb") as f:
                    f.write(content)
            else:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(content)
            os.chmod(path, 0o644)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            raise OSError(
                error.errno,
                f"No space left on device writing the report in {parent}; free some "
                "space and rerun (the previous report, if any, is untouched)",
            ) from None
        raise
    return staging


def write(report_dir: str, results: dict) -> str:
    """Renders, then swaps the new report into report_dir by renames; returns report_dir.

    If anything raises before the swap, the previous report is untouched and no staging folder
    is left behind.
    """
    files = render(results)
    final = os.path.abspath(report_dir)
    parent = os.path.dirname(final)
    os.makedirs(parent, exist_ok=True)
    _remove_leftovers(final)
    staging = _stage(parent, files)
    # Two renames (a directory cannot replace a non-empty one in one step); if the second
    # fails, the old report goes back.
    old = None
    if os.path.exists(final):
        old = tempfile.mkdtemp(prefix=f"{STAGING_PREFIXES[1]}{os.getpid()}-", dir=parent)
        os.replace(final, os.path.join(old, "report"))
    try:
        os.replace(staging, final)
    except BaseException:
        if old:
            os.replace(os.path.join(old, "report"), final)
            shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if old:
        shutil.rmtree(old, ignore_errors=True)
    return report_dir


def read_results(report_dir: str) -> dict:
    """report_dir/results.json, for re-rendering; ValueError (one line) when it cannot be used.
    A report that an eval which died between its two renames left in `.report-old-*` is put
    back first."""
    path = os.path.join(report_dir, "results.json")
    workdir = os.path.dirname(os.path.abspath(report_dir))
    if os.path.isdir(workdir):
        _remove_leftovers(os.path.abspath(report_dir))
    rerun = f"rerun python eval.py --workdir={workdir} without --render_only"
    try:
        with open(path, encoding="utf-8") as f:
            results = json.load(f)
    except FileNotFoundError:
        raise ValueError(f"{path} does not exist: {rerun}.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error}): {rerun}.") from None
    version = results.get("schema_version") if isinstance(results, dict) else None
    if version != SCHEMA_VERSION:
        raise ValueError(
            f"{path} has schema_version {version}, this renderer reads {SCHEMA_VERSION}: {rerun}."
        )
    return results
