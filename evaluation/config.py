"""The `eval` section of every experiment config."""

import ml_collections


def default_eval_config() -> ml_collections.ConfigDict:
    """Defaults for `config.eval`; experiments override what they need."""
    return ml_collections.ConfigDict({"num_examples": 256, "batch_size": 64})
