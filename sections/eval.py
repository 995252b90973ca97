"""The `eval` section of every run: typed, frozen, and its defaults live here and nowhere else.

Experiments edit the ConfigDict `default_eval_config()` gives; a run's plan (plan.py) turns it
into an `EvalConfig`, which checks its own ranges when built; the plan checks its decoder ids
against the decoders table (evaluation/decoders/), so a typo fails when training starts rather
than hours later in eval.py. Evaluators receive it as their `settings`.
"""

import dataclasses

import ml_collections

from sections.convert import section_from_dict

# The settings that name one variant of the same experiment (speed.variants names several).
VARIANT_KEYS = (
    "nar.ar_variant",
    "speculative.draft_variant",
    "speculative.cmlm_variant",
    "diffusion.ar_variant",
)


def _get(section, dotted: str):
    for part in dotted.split("."):
        section = getattr(section, part)
    return section


def _at_least(section, where: str, minimum: int, *keys: str) -> None:
    for key in keys:
        if getattr(section, key) < minimum:
            raise ValueError(f"{where}.{key} must be >= {minimum}, got {getattr(section, key)}.")


@dataclasses.dataclass(frozen=True)
class SpeedConfig:
    """`eval.speed`: decoding and training speed, timed on random weights of one variant's shape.

    Decode and train cost depend on shapes, not on weight values, so each decoder is timed on a
    fresh model of the timed variant's shape, with the attention mask the decoder needs.
    A diffusion decoder is timed on the timed variant's blocks: under `block_causal`, its
    block_size; under any other mask, one block covering the new tokens (MDLM), with the prompt
    cached. Each further variant that `variants` lists (trained, same seed) lends its blocks
    too: the diffusion decoders are timed again on each block size not yet timed, in the same
    shape otherwise, and their rows name the variant. So ("bd3_block4", "bd3_block16", "mdlm")
    times blocks of 4, 16 and one block side by side with AR.

    `batch_sizes` sweeps the batch: every decoder is timed at each listed batch size (and
    `batch_size`) at `throughput_length`, and the report gives each parallel decoder's speed-up
    over AR at each, and the batch size where it falls below 1. (): only `batch_size`.
    """

    # Variant names: the first found (trained) gives the timed shape; later ones lend their
    # block size to the diffusion decoders (above).
    variants: tuple[str, ...] = ()
    # Decoder ids (evaluation/decoders/) to time, each on a model with the mask it needs.
    decoders: tuple[str, ...] = ("ar_cache", "ar_no_cache")
    # ModelConfig fields that replace the timed variant's (e.g. a wider model than the tiny one a
    # demo trains: tiny models on CPU time dispatch overhead more than compute).
    model: dict = dataclasses.field(default_factory=dict)
    lengths: tuple[int, ...] = (64, 128, 256, 512, 1024)  # Batch 1: prompt + new tokens.
    prompt_len: int = 8
    no_cache_max_length: int = 1024  # The no-cache sampler is O(L^2) per row; cap it.
    batch_size: int = 64  # Large-batch throughput, at `throughput_length`.
    throughput_length: int = 256
    batch_sizes: tuple[int, ...] = ()  # Further batch sizes timed at `throughput_length`.
    repeats: int = 3  # Timed runs after the compiling one; the median is reported.
    # Training speed (teacher forcing vs sequential), with the training step train.py runs.
    train_seq_len: int = 64
    train_batch_size: int = 32
    train_steps: int = 3

    def __post_init__(self):
        _at_least(self, "eval.speed", 1, "prompt_len", "batch_size", "repeats")
        _at_least(self, "eval.speed", 1, "train_batch_size", "train_steps")
        _at_least(self, "eval.speed", 4, "train_seq_len")
        sizes = self.batch_sizes
        if not isinstance(sizes, tuple) or not all(
            isinstance(b, int) and not isinstance(b, bool) and b >= 1 for b in sizes
        ):
            raise ValueError(
                f"eval.speed.batch_sizes must be a tuple of positive ints, not {sizes!r}."
            )
        too_short = [n for n in (*self.lengths, self.throughput_length) if n <= self.prompt_len]
        if too_short:
            raise ValueError(
                f"eval.speed lengths {too_short} leave no new tokens after "
                f"eval.speed.prompt_len={self.prompt_len}; each total length must be larger."
            )


@dataclasses.dataclass(frozen=True)
class NarConfig:
    """Non-AR variants: the AR variant (same experiment, same seed) the report compares with."""

    ar_variant: str = ""


@dataclasses.dataclass(frozen=True)
class SpeculativeConfig:
    """AR variants: the drafts speculative decoding uses (same experiment, same seed): a smaller
    AR model, and a CMLM model that proposes the next tokens in one masked pass. "": none."""

    draft_variant: str = ""
    cmlm_variant: str = ""


@dataclasses.dataclass(frozen=True)
class DiffusionConfig:
    """Sample quality without a reference (the diffusion decoders, `ar_sample`): the AR variant
    (same experiment, same seed) whose NLL of each sample is its generative NLL. "": none, and
    only the samples' entropy is reported. An AR variant may name itself."""

    ar_variant: str = ""


@dataclasses.dataclass(frozen=True)
class LearningCurveConfig:
    """The held-out score at every kept checkpoint, and checkpoint averaging
    (evaluation/learning_curve.py)."""

    num_examples: int = 128  # Held-out prompts decoded at each checkpoint.
    average_last: int = 5  # Newest checkpoints averaged (Vaswani et al. 2017 averaged 5).

    def __post_init__(self):
        _at_least(self, "eval.learning_curve", 1, "num_examples", "average_last")


@dataclasses.dataclass(frozen=True)
class LatencyConfig:
    """Each scored decoder's wall time on the trained models and held-out rows, at batch 1 and
    at `batch_size` rows (evaluation/latency.py): the latency columns of the field's table.
    batch_size 0 (the default): not measured."""

    batch_size: int = 0  # The large batch; 0 turns the evaluator off.
    single_rows: int = 16  # Held-out rows decoded one at a time; the median call is reported.
    repeats: int = 5  # Timed calls of the large batch after the compiling one (the median).

    def __post_init__(self):
        _at_least(self, "eval.latency", 0, "batch_size")
        _at_least(self, "eval.latency", 1, "single_rows", "repeats")


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """What eval.py measures, and how much of it."""

    # Held-out loss (teacher-forced and honest) and generation quality.
    num_examples: int = 256  # Examples from the task's "eval" split.
    batch_size: int = 64
    num_samples: int = 4  # Sample generations shown in the report, per variant and decoder.
    # Decoder ids (evaluation/decoders/) to score; () = every decoder that applies.
    decoders: tuple[str, ...] = ()
    # Leakage.
    leakage_examples: int = 32  # Rows perturbed; t takes `perturbation_positions` values each.
    perturbation_positions: int = 4
    dependency_examples: int = 4  # Gradient maps averaged for the future share (first drawn).
    dependency_max_len: int = 64  # Longer rows are cut (text), to bound the Jacobian's cost.
    random_floor_examples: int = 256  # Rows of the `random` task for the ln(num_symbols) floor.
    # Likelihood: stratified times per row (per block) of a diffusion model's bound.
    likelihood_t_samples: int = 16
    nar: NarConfig = NarConfig()
    speculative: SpeculativeConfig = SpeculativeConfig()
    diffusion: DiffusionConfig = DiffusionConfig()
    learning_curve: LearningCurveConfig = LearningCurveConfig()
    latency: LatencyConfig = LatencyConfig()
    speed: SpeedConfig = SpeedConfig()

    def __post_init__(self):
        """Raises a ValueError naming the first setting that cannot be evaluated."""
        _at_least(self, "eval", 1, "num_examples", "batch_size", "leakage_examples")
        _at_least(self, "eval", 1, "perturbation_positions", "dependency_examples")
        _at_least(self, "eval", 1, "random_floor_examples", "likelihood_t_samples")
        _at_least(self, "eval", 0, "num_samples")
        _at_least(self, "eval", 2, "dependency_max_len")

    @classmethod
    def from_dict(cls, values) -> "EvalConfig":
        return section_from_dict(cls, values, "eval")

    def named_variants(self) -> dict[str, str]:
        """{dotted key: variant} of every setting that names another variant (a baseline, a
        draft, the judge of generative NLL, a timed shape), where one is named."""
        named = {key: _get(self, key) for key in VARIANT_KEYS}
        named = {key: value for key, value in named.items() if value}
        for i, variant in enumerate(self.speed.variants):
            named[f"speed.variants[{i}]"] = variant
        return named

    def with_overrides(self, overrides: dict) -> "EvalConfig":
        """A copy with flat dotted `overrides` ({"speed.repeats": 1}) set, checked again."""
        values = dataclasses.asdict(self)
        for key, value in overrides.items():
            *path, name = key.split(".")
            section = values
            for part in path:
                section = section[part]
            section[name] = value
        return EvalConfig.from_dict(values)


def default_eval_config() -> ml_collections.ConfigDict:
    """Defaults for `config.eval`, for experiment files (and eval.py's flags) to edit."""
    return ml_collections.ConfigDict(dataclasses.asdict(EvalConfig()))
