"""The objective record and the table of objectives (`train.objective`).

An objective is how a model learns: its training loss and held-out loss, the settings its loss
takes (and their ranges), whether it trains the length head, the mask kinds it can train, the
kind of model it produces, and its output canvas. Every consumer asks the record: the train
step, the plan's checks, the decoders table, likelihood, speed and the architectures' refusals.
A new objective is a module with an `Objective` and one `register_objective` call
(tests/test_extension_points.py registers one); no other module tests an objective's name.
"""

import dataclasses
import math
from collections.abc import Callable

import jax

# The kind of model an objective produces, and what the report says of it.
MODEL_KINDS = {
    "next_token": "an AR model: each position predicts the next token",
    "masked": "a non-AR model that fills masked target tokens (decoded by mask-predict)",
    "diffusion": "a masked-diffusion model, trained on a bound on the likelihood",
    "alignment": "a non-AR model that writes a canvas of tokens and blanks, collapsed (CTC)",
}
Batch = dict[str, jax.Array]
# loss(model, batch, rng, dropout_rng, **settings) -> (mean loss, number of scored tokens)
LossFn = Callable[..., tuple[jax.Array, jax.Array]]


@dataclasses.dataclass(frozen=True)
class Setting:
    """A traced hyperparameter of an objective's loss: a `TrainConfig` field and its range."""

    name: str  # The TrainConfig field (train.<name>).
    allowed: Callable[[float], bool]
    text: str  # The range, for the error: "in [0, 1]".
    keyword: str = ""  # The loss's keyword argument; "" for the step's own (length weight).

    def check(self, value: float) -> None:
        """Raises a ValueError naming train.<name> when `value` is out of range."""
        if not (math.isfinite(value) and self.allowed(value)):
            raise ValueError(f"train.{self.name} must be {self.text}, got {value}.")


@dataclasses.dataclass(frozen=True)
class Objective:
    """One training objective."""

    id: str  # train.objective, flags, results.json.
    description: str  # One sentence for people (docs, the report).
    model_kind: str  # A key of MODEL_KINDS.
    loss: LossFn
    # The held-out loss (eval_step); None: teacher-forced cross-entropy.
    held_out_loss: LossFn | None = None
    settings: tuple[Setting, ...] = ()  # The traced hyperparameters `loss` takes.
    # Adds length_loss_weight x the length head's loss, when the model has one.
    trains_length_head: bool = False
    # The mask kinds it trains, by what a target sees of later targets (model/masks.py
    # TARGET_VIEWS); None: every kind. `mask_reason` says why, in the refusal.
    target_views: tuple[str, ...] | None = None
    mask_reason: str = ""
    # Its output canvas: 0 writes the target's own length; r > 0, r x the source's length
    # (an alignment-based objective such as CTC).
    canvas_ratio: int = 0
    # Why it refuses train.label_smoothing > 0 ("": it takes it, as a setting).
    no_label_smoothing: str = ""
    # The loss runs the model one token at a time through its KV cache from the first position
    # (an architecture that must see the whole prompt first refuses it).
    steps_through_cache: bool = False
    # Why it cannot train in low precision on the CPU ("": it can).
    cpu_low_precision: str = ""
    # The loss takes `progress`: the update's fraction of train.num_steps, in [0, 1] (a setting
    # that follows a schedule over the run, as GLAT's annealed glancing ratio).
    takes_progress: bool = False
    # Its loss reads each row whole, the last target included (seq_len + 1 tokens, so a window
    # cut from a longer text without EOS keeps its last token, which AR scores too): its model
    # needs one more position than the task's seq_len (plan.py).
    reads_whole_sequence: bool = False
    # FLOPs of a train step, (architecture, model config, batch) -> float, for a loss that runs
    # the model other than once over each row (block diffusion's two copies); None: the
    # architecture's `train_flops` of the batch.
    train_flops: Callable | None = None

    def __post_init__(self):
        if self.model_kind not in MODEL_KINDS:
            raise ValueError(
                f"Objective {self.id!r}: model_kind must be one of {list(MODEL_KINDS)}, "
                f"got {self.model_kind!r}"
            )
        if not self.id.isidentifier():
            raise ValueError(f"Objective id {self.id!r} must be an identifier")

    @property
    def next_token(self) -> bool:
        """Whether it produces an AR (next-token) model."""
        return self.model_kind == "next_token"

    def step_flops(self, arch, cfg, batch: dict) -> float:
        """Forward + backward FLOPs of one train step of this loss on `batch` (shapes only)."""
        count = self.train_flops or (lambda a, c, b: a.train_flops(c, b))
        return float(count(arch, cfg, batch))

    def trains_mask(self, kind) -> bool:
        """Whether it can train a model of mask `kind` (a model.masks.MaskKind)."""
        return self.target_views is None or kind.target_view in self.target_views


OBJECTIVES: dict[str, Objective] = {}


def register_objective(objective: Objective) -> Objective:
    """Adds an objective to the table (a later one with the same id replaces the earlier one)."""
    OBJECTIVES[objective.id] = objective
    return objective


def objective_of(name: str) -> Objective:
    """The record of an objective id; a one-line ValueError names the registered ones."""
    if name not in OBJECTIVES:
        raise ValueError(f"train.objective={name!r}; expected one of {tuple(OBJECTIVES)}.")
    return OBJECTIVES[name]


def all_settings() -> dict[str, Setting]:
    """Every registered objective's settings, by TrainConfig field."""
    return {s.name: s for record in OBJECTIVES.values() for s in record.settings}
