"""`RunPlan`: everything one (variant, seed) run is, as typed, frozen sections; and how a saved
config.json (or experiment.json's eval section) is read back over today's defaults.

plan.py makes plans from experiment files; training and evaluation receive them and import
neither plan.py nor experiments/ (tests/test_imports.py).
"""

import dataclasses

from data import DataConfig
from model import ModelConfig
from model.architectures import ARCHITECTURES
from sections.convert import known_keys, section_from_dict
from sections.eval import EvalConfig
from sections.train import MeshConfig, TrainConfig

# The typed sections of a plan, by key.
SECTIONS = {
    "model": ModelConfig,
    "data": DataConfig,
    "train": TrainConfig,
    "mesh": MeshConfig,
    "eval": EvalConfig,
}
# What a run's config.json holds beside its sections (an experiment.json also has `variants`).
RUN_KEYS = ("name", "variant", "seed", "seeds")


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """Everything one (variant, seed) run is: what train.py trains and eval.py evaluates."""

    name: str  # The experiment's name.
    variant: str  # "" when the experiment defines no variants.
    seed: int  # Model init, dropout and CMLM masks.
    seeds: tuple[int, ...]  # Every seed of the experiment.
    model: ModelConfig
    data: DataConfig
    train: TrainConfig
    mesh: MeshConfig
    eval: EvalConfig

    def to_dict(self) -> dict:
        """config.json's content (tuples as lists once written as JSON)."""
        return dataclasses.asdict(self)

    def with_eval(self, overrides: dict) -> "RunPlan":
        """The plan with flat dotted `eval` overrides ({"speed.repeats": 1}) set."""
        return dataclasses.replace(self, eval=self.eval.with_overrides(overrides))


def saved_section(cls: type, saved: dict | None, where: str) -> tuple[object, list[str]]:
    """The section `cls` of a saved mapping over today's defaults: keys added since take their
    defaults; saved keys that no longer exist are dropped and returned by dotted name."""
    values, dropped = known_keys(cls, saved or {}, where)
    return section_from_dict(cls, values, where), dropped


def load_plan(saved: dict) -> tuple[RunPlan, list[str]]:
    """A run's saved config.json as a plan over today's defaults, and the saved keys today's
    code no longer has (dropped)."""
    sections, dropped = {}, []
    saved = _with_saved_before(saved)
    for key, cls in SECTIONS.items():
        sections[key], lost = saved_section(cls, saved.get(key), key)
        dropped += lost
    dropped += [key for key in saved if key not in (*SECTIONS, *RUN_KEYS, "variants")]
    seeds = tuple(saved.get("seeds", (0,)))
    plan = RunPlan(
        name=saved.get("name", "base"),
        variant=saved.get("variant", ""),
        seed=saved.get("seed", seeds[0]),
        seeds=seeds,
        **sections,
    )
    return plan, dropped


def _with_saved_before(saved: dict) -> dict:
    """`saved` with each model setting its architecture's `saved_before` names, where absent:
    the value that reproduces what a run saved before that setting existed did."""
    model = saved.get("model")
    architecture = ARCHITECTURES.get((model or {}).get("architecture", ModelConfig.architecture))
    if not model or architecture is None:
        return saved  # Nothing saved, or an unknown architecture: the ModelConfig check names it.
    return {**saved, "model": {**architecture.saved_before, **model}}


def experiment_eval(saved: dict | None) -> EvalConfig:
    """The experiment's `eval` section (experiment.json) over today's defaults."""
    return saved_section(EvalConfig, (saved or {}).get("eval"), "eval")[0]
