"""The `train` and `mesh` sections of every run: typed, frozen, and their defaults live here.

Experiments edit ml_collections ConfigDicts (`default_train_config()`); a run's plan (plan.py)
turns them into `TrainConfig` and `MeshConfig`, which check themselves when built, and the train
step receives them as the model receives ModelConfig.
"""

import dataclasses
import math

import ml_collections

from objectives import all_settings, objective_of

# The optimizer's and the loop's ranges; each objective's own settings carry theirs
# (objectives/).
_RANGES = {
    "learning_rate": (lambda v: v > 0, "> 0"),
    "warmup_steps": (lambda v: v >= 0, ">= 0"),
    "min_learning_rate_ratio": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "weight_decay": (lambda v: v >= 0, ">= 0"),
    "adam_b1": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "adam_b2": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "grad_clip_norm": (lambda v: v >= 0, ">= 0 (0: no clipping)"),
    "ema_decay": (lambda v: 0 <= v < 1, "in [0, 1) (0: no EMA)"),
    "peak_flops_per_device": (lambda v: v >= 0, ">= 0 (0: measured)"),
}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How a run trains."""

    objective: str = "teacher_forcing"  # The id of a registered objective (objectives/).
    batch_size: int = 64  # Global: split over processes and devices.
    num_steps: int = 2000
    learning_rate: float = 1e-3  # Peak, after linear warmup; then cosine decay.
    warmup_steps: int = 100
    min_learning_rate_ratio: float = 0.1  # Cosine decays to this fraction of the peak.
    weight_decay: float = 0.01  # AdamW; applied to matrices only (not biases, norms).
    adam_b1: float = 0.9
    adam_b2: float = 0.98
    grad_clip_norm: float = 1.0  # Global-norm clipping; 0 disables it.
    # > 0: keep an EMA of the params with this decay, MDLM's and BD3-LM's (0.9999 in both, with
    # their warm-up min(decay, (1 + n) / (10 + n)) at update n; training/ema.py). The held-out
    # loss and everything that loads the run (eval.py, distill.py) use the EMA; 0: none.
    ema_decay: float = 0.0
    # A variant of the same experiment whose trained params (same seed, newest checkpoint) a
    # fresh run starts from, with a fresh optimizer (BD3-LM fine-tunes from MDLM;
    # training/warm_start.py); "": a fresh init.
    init_from: str = ""
    # objective="glancing" (GLAT): reference tokens revealed per error of the first pass, and
    # where it ends, annealed linearly over the run (GLAT's 0.5 -> 0.3); -1: glancing_ratio
    # throughout.
    glancing_ratio: float = 0.5
    glancing_ratio_end: float = -1.0
    # masked / glancing / diffusion with model.length_head: weight of the length head's
    # cross-entropy in the loss (fairseq's length_loss_factor).
    length_loss_weight: float = 0.1
    # Label smoothing of the training loss (0.1 in the field's translation recipes); the logged
    # training loss includes it, the held-out loss is plain cross-entropy. Not with diffusion,
    # whose loss must stay a bound on the likelihood.
    label_smoothing: float = 0.0
    # objective="diffusion": training times are drawn from (diffusion_eps, 1], away from t = 0,
    # where the ELBO weight 1/t makes the loss noisy (MDLM's 1e-3). The held-out loss uses 0.
    diffusion_eps: float = 1e-3
    log_every: int = 50
    eval_every: int = 500  # Held-out loss every so many steps (and at the end); 0: never.
    eval_batches: int = 4
    checkpoint_every: int = 500  # Also at the end and on SIGTERM.
    keep_checkpoints: int = 2
    peak_flops_per_device: float = 0.0  # For MFU; 0: measured once by a matmul benchmark.

    def __post_init__(self):
        """Raises a ValueError naming the first setting that cannot train."""
        objective = objective_of(self.objective)
        for key in ("batch_size", "num_steps", "log_every", "checkpoint_every", "keep_checkpoints"):
            if getattr(self, key) < 1:
                raise ValueError(f"train.{key} must be >= 1, got {getattr(self, key)}.")
        if self.eval_every < 0:
            raise ValueError(f"train.eval_every must be >= 0 (0: never), got {self.eval_every}.")
        if self.eval_batches < 1:
            raise ValueError(
                f"train.eval_batches must be >= 1, got {self.eval_batches}; set "
                "train.eval_every=0 for no held-out loss during training."
            )
        for key, (allowed, text) in _RANGES.items():
            value = getattr(self, key)
            if not (math.isfinite(value) and allowed(value)):
                raise ValueError(f"train.{key} must be {text}, got {value}.")
        for name, setting in all_settings().items():
            setting.check(getattr(self, name))
        if objective.no_label_smoothing and self.label_smoothing:
            raise ValueError(
                f"train.label_smoothing must be 0 with train.objective={self.objective!r} "
                f"({objective.no_label_smoothing}), got {self.label_smoothing}."
            )


@dataclasses.dataclass(frozen=True)
class MeshConfig:
    """Devices per FSDP group; the data axis takes the rest (training/mesh.py)."""

    fsdp: int = 1  # 1: plain data parallelism (params replicated); 4: each param split in 4.


def default_train_config() -> ml_collections.ConfigDict:
    """Defaults for `config.train`, for experiment files to edit."""
    return ml_collections.ConfigDict(dataclasses.asdict(TrainConfig()))


def default_mesh_config() -> ml_collections.ConfigDict:
    """Defaults for `config.mesh`, for experiment files to edit."""
    return ml_collections.ConfigDict(dataclasses.asdict(MeshConfig()))
