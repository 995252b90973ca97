"""A trained run loaded for evaluation, and the `Measurement` every evaluator returns."""

import dataclasses
import functools

import data
from evaluation.decoders import DecoderSpec, Models
from model import Decoder, MaskKind
from objectives import Objective, objective_of
from sections import RunPlan
from training import checkpoints, run_folder

Scalars = dict[str, tuple[float, float | None]]  # name -> (value, sem over examples or None)


@dataclasses.dataclass
class Measurement:
    """What an evaluator found: scalars for the variant's metrics, and whatever else it made."""

    metrics: Scalars = dataclasses.field(default_factory=dict)
    # Decoder -> sample lines, or on a translation task {source, reference, hypothesis} texts.
    samples: dict[str, list[str] | list[dict[str, str]]] = dataclasses.field(default_factory=dict)
    pictures: dict | None = None  # The report's per-variant figures (dependency map, ...).
    tables: dict[str, list[dict]] = dataclasses.field(default_factory=dict)  # e.g. "sampling".
    info: dict = dataclasses.field(default_factory=dict)  # e.g. the timed model's shape.
    # Metric -> the provenance of its numbers, e.g. {"bleu": sacrebleu's signature}.
    signatures: dict[str, str] = dataclasses.field(default_factory=dict)
    # Metric -> each scored sentence's (row's) statistics, in the order of the eval rows, for
    # paired comparisons in the report: BLEU's translation.sentence_stats; likelihood's [nats,
    # tokens] per row.
    sentences: dict[str, list] = dataclasses.field(default_factory=dict)
    # Why it measured nothing on this run ("": it measured, or had nothing to say): the runner
    # logs it, results.json keeps it, and the report's methods say it.
    skipped: str = ""


@dataclasses.dataclass
class LoadedRun:
    """One (variant, seed) run: its model at the latest checkpoint and its config."""

    variant: str
    seed: int
    run_dir: str
    model: Decoder
    config: RunPlan  # config.json over today's defaults.
    step: int

    @functools.cached_property
    def task(self):
        return data.make_task(self.config.data)

    @property
    def objective(self) -> Objective:
        """The record of the objective it was trained with (objectives/)."""
        return objective_of(self.config.train.objective)

    @property
    def mask_kind(self) -> MaskKind:
        """The record of its attention mask kind (model/masks.py)."""
        return self.model.cfg.mask

    def needed_variant(self, spec: DecoderSpec) -> str:
        """The variant named at `config.eval.<spec.needs>` ("" if none, or none needed)."""
        variant = self.config.eval if spec.needs else ""
        for key in spec.needs.split(".") if spec.needs else ():
            variant = getattr(variant, key)
        return variant

    def models_for(self, spec: DecoderSpec, any_seed: bool = False) -> Models | None:
        """The models `spec` runs on; None when the second model it needs is not trained. It
        has this run's seed, or with `any_seed` (a judge) the variant's one trained seed."""
        if spec.needs is None:
            return Models(self.model)
        variant = self.needed_variant(spec)
        sibling = run_folder.sibling_run(self.run_dir, variant, any_seed) if variant else None
        if sibling is None:
            return None
        return Models(self.model, checkpoints.load_params(sibling)[0])


def load_run(variant: str, seed: int, run_dir: str) -> tuple[LoadedRun, list[str]]:
    """The run at its latest checkpoint, and the saved config keys today's code no longer has."""
    model, _, config, step = checkpoints.load_params(run_dir)
    _, dropped = checkpoints.load_config(run_dir)
    objective = objective_of(config.train.objective)
    if objective.reads_whole_sequence and model.cfg.max_len <= config.data.seq_len:
        raise ValueError(
            f"{run_dir}: this {objective.id} model has max_len={model.cfg.max_len}, no position "
            f"for the last token of a {config.data.seq_len}-token row, which it now scores (it "
            "was trained before 2026-12-07); retrain it"
        )
    return LoadedRun(variant, seed, run_dir, model, config, step), dropped
