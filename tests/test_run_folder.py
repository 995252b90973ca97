"""The run-folder layout (training/run_folder.py): where runs, seeds and siblings are found."""

import json

from training import run_folder


def _make_run(workdir, variant, seed, trained=True):
    path = workdir / variant / f"seed_{seed}"
    # A trained run has a checkpoint step; an untrained one may have an empty checkpoints/.
    (path / "checkpoints" / ("10" if trained else "")).mkdir(parents=True)
    return str(path)


def test_trained_variants_follow_the_experiments_order_then_the_rest(tmp_path):
    (tmp_path / "experiment.json").write_text(json.dumps({"variants": {"b": {}, "a": {}, "c": {}}}))
    _make_run(tmp_path, "a", 0)
    _make_run(tmp_path, "b", 1)
    _make_run(tmp_path, "b", 0)
    _make_run(tmp_path, "c", 0, trained=False)  # A run that never saved a checkpoint.
    _make_run(tmp_path, "z_extra", 0)
    (tmp_path / "report").mkdir()
    assert [name for name, _ in run_folder.trained_variants(str(tmp_path))] == ["b", "a", "z_extra"]
    assert [seed for seed, _ in run_folder.seed_runs(str(tmp_path / "b"))] == [0, 1]
    assert run_folder.defined_variants(str(tmp_path)) == ["b", "a", "c"]


def test_an_experiment_without_variants_has_one_default_variant(tmp_path):
    assert run_folder.defined_variants(str(tmp_path)) == []  # No experiment.json at all.
    (tmp_path / "experiment.json").write_text(json.dumps({"variants": {}}))
    assert run_folder.defined_variants(str(tmp_path)) == ["default"]
    assert run_folder.run_dir(str(tmp_path), "", 3).endswith("default/seed_3")


def test_sibling_run_is_the_other_variants_run_with_the_same_seed(tmp_path):
    ar = _make_run(tmp_path, "reverse_ar", 1)
    nar = _make_run(tmp_path, "reverse_nar", 1)
    assert run_folder.sibling_run(nar, "reverse_ar") == ar
    assert run_folder.sibling_run(nar + "/", "reverse_ar") == ar
    assert run_folder.sibling_run(nar, "sort_ar") is None
    _make_run(tmp_path, "untrained", 1, trained=False)
    assert run_folder.sibling_run(nar, "untrained") is None


def test_a_judge_trained_once_at_a_seed_of_its_own_serves_every_seed(tmp_path):
    candidates = [_make_run(tmp_path, "mdlm", seed) for seed in (0, 1)]
    judge = _make_run(tmp_path, "judge", 100)
    for run in candidates:
        assert run_folder.sibling_run(run, "judge") is None  # Not the same seed.
        assert run_folder.sibling_run(run, "judge", any_seed=True) == judge
    _make_run(tmp_path, "judge", 101)  # Two judges: which one is ambiguous, so none.
    assert run_folder.sibling_run(candidates[0], "judge", any_seed=True) is None
