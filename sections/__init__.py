"""The typed, frozen sections of a run (train, mesh, eval; the model's and the data's live with
them, in model/ and data/) and `RunPlan`, which holds them: what training and evaluation receive.

They sit below training/ and evaluation/, so config flows one way: plan.py builds plans from
experiment files, the entry points hand them down.
"""

from sections.convert import known_keys, section_from_dict
from sections.eval import (
    DiffusionConfig,
    EvalConfig,
    LatencyConfig,
    LearningCurveConfig,
    NarConfig,
    SpeculativeConfig,
    SpeedConfig,
    default_eval_config,
)
from sections.run_plan import SECTIONS, RunPlan, experiment_eval, load_plan, saved_section
from sections.train import MeshConfig, TrainConfig, default_mesh_config, default_train_config

__all__ = [
    "SECTIONS",
    "DiffusionConfig",
    "EvalConfig",
    "LatencyConfig",
    "LearningCurveConfig",
    "MeshConfig",
    "NarConfig",
    "RunPlan",
    "SpeculativeConfig",
    "SpeedConfig",
    "TrainConfig",
    "default_eval_config",
    "default_mesh_config",
    "default_train_config",
    "experiment_eval",
    "known_keys",
    "load_plan",
    "saved_section",
    "section_from_dict",
]
