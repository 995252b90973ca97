"""What an evaluator says about its numbers, so that the report needs no code of its own for them.

An evaluator (evaluation/runner.py) and a decoder (evaluation/decoders/) describe each metric they
produce with a `MetricSpec`, and each table of timed rows with a `TableSpec`. The runner stores
these descriptions in results.json (`metrics_info`, `tables_info`), and the renderer builds the
summary, the per-decoder quality table, any table of an evaluator's own, the timed tables, the
verdicts and the methods section from them. So a new evaluator is one entry in
`runner.register_evaluator`: its metrics reach every table and verdict with no change to the
report.

Verdict rules are data: `{"rule": <id in report/verdicts.RULES>, ...its parameters}`. The generic
rules ("state": a sentence with the value; "zero": one sentence when the metric is exactly 0.0 in
every seed, another when not) serve any new metric; `rules.register_rule` adds a rule of its own;
the others are the rules of this project's own evaluators. A per-decoder metric's rule may set
"priority": per (variant, decoder) only the rule of highest priority among the metrics present
speaks (an exact-parallel decoder's "same as greedy" verdict over its exact match).

results.json, schema_version 3:
- top level: `schema_version`, `experiment`, `workdir`, `created`, `device` {platform, kind, count,
  host_cpu, host_cores}, `commit`, `commit_dirty`, `versions`, `eval_config`, `decoders` {id:
  {label, family, needs, description, params}} (params: the spec's set parameters, e.g.
  {"iterations": 4, "length_beam": 3}; absent in results written before them), `families`
  {family: description}, `metrics_info` [MetricSpec as a dict, in column order], `tables_info`
  [TableSpec as a dict], `untrained_variants` [names], `variants` [records], `speed`.
- a variant record: `name`, `task` (the task's label), `skipped` {evaluator: why it measured nothing
  on this variant}, `carried` {metric: the eval (created, steps) that measured it, when a later eval
  kept it}, `model_kind` (its objective's), `exact_mask`, `block_size`, `mask_kind`, `mask_label`
  (as the summary shows it, e.g. "enc-dec, causal"), `architecture`, `objective`, `non_ar` (whether
  the objective trains a non-AR model), `seeds`, `steps` (evaluated, per seed), `num_steps`
  (configured), `num_params`, `config`, `baseline` (a non-AR variant's AR variant, or null),
  `metrics`, `signatures` {metric: sacrebleu signature}, `sentences` {metric: [per seed, in seed
  order: [per eval row, in order: its statistics]]}: BLEU's sufficient statistics
  (`bleu/<decoder id>`), likelihood's [nats, tokens] (`likelihood_bits`), for paired
  differences (report/paired.py; absent in results written before them), `samples` {decoder
  id: [str], or on a translation task [{source, reference, hypothesis}]}, `pictures`
  {dependency_map [T][T], attention [L][T][T], labels [T], prefix_length}, `curves` {seed:
  {train, eval: [[step, loss]], tokens_per_s}}, `train_tokens_per_s`, `train_cost` {seconds,
  flops: the mean over seeds of what training logged up to the evaluated step, or null}.
- each `metrics` entry: {`mean`, `sem` (over seeds; null for one seed; the report combines it
  with the seeds' sems over examples, numbers.sem_of), `n_seeds`, `per_seed`,
  `per_seed_sem` (over examples, or null)}, named by its MetricSpec; a per-decoder metric is
  stored as `<name>/<decoder id>`.
- `speed`: {} when nothing was timed, else {`variant`, `model`, `note`, and one list of rows per
  TableSpec name, e.g. `sampling`: [{decoder, family, batch_size, prompt_len, new_tokens,
  length, latency_s, ms_per_token, tokens_per_s, compile_s}], `training`: [{objective, dtype,
  seq_len, batch_size, step_time_s, tokens_per_s, compile_s}]}.
- Verdicts are not stored: the renderer computes them from the numbers and the rules.
"""

import dataclasses
import json

SCHEMA_VERSION = 3
# How a metric's number is shown: 3 significant digits; a share in %; a 0-100 score (BLEU) with
# one decimal; a plain number with 3 significant digits that is not a share (passes per token).
METRIC_FORMATS = ("number", "percent", "points")
SUMMARY, QUALITY = "summary", "quality"  # The two shared tables; any other name is a table.


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    """One metric: its key, how it is shown, where, and the verdicts it gives."""

    name: str  # The key in a record's metrics (`<name>/<decoder id>` when per_decoder).
    label: str  # Its column header.
    format: str = "number"  # One of METRIC_FORMATS.
    # SUMMARY (one row per variant), QUALITY (one row per variant and decoder: needs
    # per_decoder), or the title of a table of its own (one row per variant).
    table: str = SUMMARY
    per_decoder: bool = False
    paired_with: str | None = None  # Another metric shown after the value, in parentheses.
    hidden: bool = False  # Stored and used by verdicts, but not a column of its own.
    verdicts: tuple[dict, ...] = ()  # Rules: {"rule": id, ...} (report/verdicts.py).
    method: str = ""  # How it is measured (Markdown), for the report's methods section.

    def __post_init__(self):
        if self.format not in METRIC_FORMATS:
            raise ValueError(f"MetricSpec {self.name!r}: format must be one of {METRIC_FORMATS}")
        if self.table == QUALITY and not self.per_decoder:
            raise ValueError(f"MetricSpec {self.name!r}: the quality table is per decoder")

    def to_json(self) -> dict:
        """As results.json holds it (tuples as lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


@dataclasses.dataclass(frozen=True)
class ColumnSpec:
    """One column of a timed table: a row key, its header, and a format for its value."""

    key: str
    label: str
    # A str.format pattern for the value times `scale` ("{:,.0f}"); "decoder": the decoder's
    # label from results["decoders"]; "text": the value as it is.
    format: str = "text"
    scale: float = 1.0


@dataclasses.dataclass(frozen=True)
class TableSpec:
    """A table of rows that a "timed" evaluator returns (results["speed"][name])."""

    name: str  # The key of its rows in results["speed"].
    title: str
    columns: tuple[ColumnSpec, ...]
    text_columns: int = 1  # The first columns hold text (left-aligned).
    verdicts: tuple[dict, ...] = ()  # Rules over the rows: {"rule": id, ...}.
    method: str = ""

    def to_json(self) -> dict:
        """As results.json holds it (tuples as lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))
