"""The training objectives: the `Objective` record and table (base.py), and one module per
family of built-in objectives, each registering its records when imported."""

# The table lists the objectives in the order their modules register them: AR first.
# isort: off
from objectives import next_token
from objectives import masked
from objectives import diffusion
from objectives import ctc

# isort: on
from objectives.base import (
    MODEL_KINDS,
    OBJECTIVES,
    Objective,
    Setting,
    all_settings,
    objective_of,
    register_objective,
)
from objectives.common import (
    length_loss,
    masked_cross_entropy,
    teacher_forcing_loss,
    with_length_loss,
)

__all__ = [
    "MODEL_KINDS",
    "OBJECTIVES",
    "Objective",
    "Setting",
    "all_settings",
    "ctc",
    "diffusion",
    "length_loss",
    "masked",
    "masked_cross_entropy",
    "next_token",
    "objective_of",
    "register_objective",
    "teacher_forcing_loss",
    "with_length_loss",
]
