"""training/checkpoints.py: a run folder with another config is refused unless overwritten."""

import ml_collections
import pytest

from experiments import tiny
from experiments.base import resolve_variant
from training import checkpoints


def test_a_run_folder_with_another_config_is_refused_unless_overwritten(tmp_path):
    run_dir = str(tmp_path / "run")
    config = resolve_variant(tiny.get_config(), "causal")
    checkpoints.prepare_run_dir(run_dir, config, overwrite=False)
    (tmp_path / "run" / "marker").write_text("old run")
    changed = ml_collections.ConfigDict(config.to_dict())
    changed.model.d_model = 64
    changed.train.log_every = 7  # Bookkeeping: allowed on resume, not reported.
    with pytest.raises(ValueError, match=r"model\.d_model: 32 -> 64") as error:
        checkpoints.prepare_run_dir(run_dir, changed, overwrite=False)
    assert "log_every" not in str(error.value)
    checkpoints.prepare_run_dir(run_dir, config, overwrite=False)  # Same config: resumes.
    assert (tmp_path / "run" / "marker").exists()
    checkpoints.prepare_run_dir(run_dir, changed, overwrite=True)
    assert not (tmp_path / "run" / "marker").exists()
    assert checkpoints.load_config(run_dir)[0].model.d_model == 64
