"""training/metrics.py: FLOPs per token (each architecture counts its own), the first non-finite
row, and the metrics writer."""

import json

from model import ARCHITECTURES, ModelConfig, architecture_of
from training import metrics


def test_flops_per_token_is_the_architectures_count():
    for architecture in ARCHITECTURES:
        cfg = ModelConfig(
            vocab_size=261, d_model=512, num_heads=8, num_layers=6, d_ff=2048, max_len=256,
            architecture=architecture,
        )  # fmt: skip
        expected = architecture_of(cfg).train_flops_per_token(cfg, 256)
        assert metrics.train_flops_per_token(cfg, 256) == expected


def test_first_non_finite_names_the_first_bad_row():
    rows = [{"loss": 1.0, "grad_norm": 1.0}, {"loss": 1.0, "grad_norm": float("inf")}]
    assert metrics.first_non_finite(rows, ("loss", "grad_norm")) == 1
    assert metrics.first_non_finite(rows[:1], ("loss", "grad_norm")) is None


def test_metrics_writer_drops_lines_past_the_resumed_checkpoint(tmp_path):
    writer = metrics.MetricsWriter(str(tmp_path))
    for step in (10, 20, 30):
        writer.write(step, "train", {"loss": 1.0})
    writer.close()
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 40, "spl')  # Cut short by a crash.
    metrics.MetricsWriter(str(tmp_path), keep_up_to_step=20).close()
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [10, 20]
