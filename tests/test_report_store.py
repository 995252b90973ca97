"""The report folder (evaluation/report/store.py): atomic writing, staging folders left by dead
or running evals, results.json read back, and --render_only; from report_fixtures' results dict."""

import json
import os
import stat
import subprocess
import sys

import pytest
from conftest import tmpfs
from report_fixtures import FIGURES, make_results

from evaluation import report
from evaluation.report import rendering


@pytest.fixture
def results():
    return make_results()


@pytest.mark.slow
def test_write_swaps_in_a_complete_report(tmp_path, results):
    (tmp_path / ".report-tmp-x").mkdir()  # Left behind by an eval that died.
    path = report.write(str(tmp_path / "report"), results)
    assert path == str(tmp_path / "report")
    assert {"report.md", "index.html", "results.json"} | FIGURES == set(os.listdir(path))
    with open(os.path.join(path, "results.json")) as f:
        assert json.load(f) == results
    assert sorted(os.listdir(tmp_path)) == ["report"]  # No staging folders left behind.
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(os.path.join(path, "index.html")).st_mode) == 0o644
    report.write(path, results)  # Over an existing report.
    assert sorted(os.listdir(tmp_path)) == ["report"]


@pytest.mark.slow
def test_a_running_evals_staging_folder_is_left_alone(tmp_path, results):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as running:
        (tmp_path / f".report-tmp-{running.pid}-abc").mkdir()  # Another eval, writing now.
        (tmp_path / f".report-tmp-{dead}-abc").mkdir()  # An eval that died.
        report.write(str(tmp_path / "report"), results)
        assert sorted(os.listdir(tmp_path)) == [f".report-tmp-{running.pid}-abc", "report"]
        running.kill()


@pytest.mark.slow
def test_failed_render_leaves_the_old_report_intact(tmp_path, results, monkeypatch):
    old = tmp_path / "report"
    old.mkdir()
    (old / "index.html").write_text("the good old report")

    def broken(results):
        raise RuntimeError("drawing failed half-way")

    monkeypatch.setattr(rendering, "figures", broken)
    with pytest.raises(RuntimeError):
        report.write(str(old), results)
    monkeypatch.undo()
    # A failure while writing the staging folder (a name that cannot be created).
    files = report.render(results) | {"missing/x.png": b"png"}
    monkeypatch.setattr("evaluation.report.store.render", lambda results: files)
    with pytest.raises(FileNotFoundError):
        report.write(str(old), results)
    assert (old / "index.html").read_text() == "the good old report"
    assert sorted(os.listdir(tmp_path)) == ["report"]


def test_results_json_rejects_nan(tmp_path, results):
    results["variants"][0]["metrics"]["loss_honest"]["mean"] = float("nan")
    with pytest.raises(ValueError):
        report.write(str(tmp_path / "report"), results)
    assert os.listdir(tmp_path) == []


@pytest.mark.slow
def test_render_only_gives_the_same_report(tmp_path, results):
    path = report.write(str(tmp_path / "report"), results)
    again = report.render(report.read_results(path))
    for name in ("report.md", "index.html", "results.json"):
        with open(os.path.join(path, name), encoding="utf-8") as f:
            assert again[name] == f.read(), name


def test_read_results_errors_are_one_clear_line(tmp_path, results):
    report_dir = tmp_path / "report"
    with pytest.raises(ValueError, match="does not exist: rerun python eval.py --workdir="):
        report.read_results(str(report_dir))
    report_dir.mkdir()
    (report_dir / "results.json").write_text(json.dumps(results)[:100])
    with pytest.raises(ValueError, match="is not valid JSON") as truncated:
        report.read_results(str(report_dir))
    (report_dir / "results.json").write_text(json.dumps(results | {"schema_version": 1}))
    with pytest.raises(ValueError, match="schema_version 1, this renderer reads 3") as old:
        report.read_results(str(report_dir))
    for error in (truncated, old):
        assert "\n" not in str(error.value) and "without --render_only" in str(error.value)


def test_render_only_finds_the_results_a_crash_between_the_renames_left_aside(tmp_path, results):
    """An eval killed between its two renames left results.json only in .report-old-*; reading
    the results once said there were none."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    aside = tmp_path / f".report-old-{dead}-abc" / "report"
    aside.mkdir(parents=True)
    (aside / "results.json").write_text(json.dumps(results))
    assert report.read_results(str(tmp_path / "report")) == results
    assert sorted(os.listdir(tmp_path)) == ["report"]


def test_a_full_disk_names_the_report_folder_and_leaves_nothing_behind(tmp_path, results):
    """A full disk while eval wrote its report once said `[Errno 28]` with no path."""
    folder = tmp_path / "small"
    folder.mkdir()
    with tmpfs(folder, "size=8k"):
        with pytest.raises(
            OSError, match=f"No space left on device writing the report in {folder}"
        ):
            report.write(str(folder / "report"), results)
        assert os.listdir(folder) == []
