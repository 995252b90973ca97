"""The learning-curve evaluator: a held-out score at every kept checkpoint, and what averaging the
last few checkpoints gives.

For each checkpoint the run folder keeps (evaluation/checkpoint_history.py), the variant's first
scored decoder decodes the first `eval.learning_curve.num_examples` prompts of the eval split: the
first decoder of `eval.decoders` that applies to the variant and needs no second model, or else the
first such decoder of the table's default set (greedy AR for an AR model, mask-predict for a CMLM
model). A translation task is scored by corpus BLEU (evaluation/translation.py: sacrebleu, ± a
bootstrap sem over sentences), any other task by exact match (± sem over examples), and plain
text, which has no prompt to continue, by its likelihood in bits per token (exact for AR, the
ELBO bound for diffusion; evaluation/likelihood.py), so that diffusion's gap to AR is read
against compute. The points
(step, score), with the training seconds and FLOPs spent to reach each step (from the run's
metrics.jsonl), are the report's learning-curve figure, drawn against training time when every
run logged it: a curve still rising at the last step says that training stopped before it
converged, and variants of unequal step costs meet on one axis of compute.

Then the model whose parameters are the mean of the newest `eval.learning_curve.average_last`
checkpoints is scored the same way, beside the last checkpoint alone (metrics `bleu_last`,
`bleu_averaged`, their difference `bleu_averaging_gain`, and `averaged_checkpoints`;
`exact_match_*` off translation).
"""

from collections.abc import Callable

from evaluation import checkpoint_history, decoders, likelihood, scoring, translation
from evaluation.report.numbers import fmt_value
from evaluation.report.schema import MetricSpec
from evaluation.run import LoadedRun, Measurement
from evaluation.stats import mean_sem
from model import Decoder
from sections import EvalConfig

Log = Callable[[str], None]
Score = tuple[float, float | None]

TABLE = "Checkpoint averaging"
# The score of a translation task, of any other task with prompts, and of plain text (no prompt
# to continue: the likelihood, evaluation/likelihood.py): (name, label, format).
SCORES = (
    ("bleu", "BLEU", "points"),
    ("exact_match", "exact match", "percent"),
    ("likelihood_bits", "bits per token", "number"),
)

METHOD = (
    "**Learning curve and checkpoint averaging**: every checkpoint the run keeps decodes the "
    "first `eval.learning_curve.num_examples` held-out prompts with the variant's first scored "
    "decoder (BLEU on "
    "translation, else exact match), which gives the score against training steps and against "
    "the training time (and FLOPs) its run logged to reach them. The model "
    "whose parameters are the elementwise mean of the newest `eval.learning_curve.average_last` "
    "checkpoints (as "
    "fairseq's average_checkpoints.py and Vaswani et al. 2017 do) is scored the same way, beside "
    "the last checkpoint alone."
)


def _metric_specs(name: str, label: str, format: str) -> tuple[MetricSpec, ...]:
    # Diffusion's likelihood against AR's along the curves: does the gap narrow with compute?
    along = ({"rule": "gap_with_compute", "lead": True},) if name == "likelihood_bits" else ()
    gain = (
        f"{{variant}}: averaging its last checkpoints changes held-out {label} by {{value}} "
        "against the last checkpoint alone."
    )
    return (
        MetricSpec(f"{name}_last", f"{label}, last checkpoint", format, TABLE, verdicts=along),
        MetricSpec(f"{name}_averaged", f"{label}, last checkpoints averaged", format, TABLE),
        MetricSpec(
            f"{name}_averaging_gain",
            f"{label} gain from averaging",
            format,
            TABLE,
            hidden=True,
            verdicts=({"rule": "state", "text": gain},),
        ),
    )


METRICS = (
    *(spec for score in SCORES for spec in _metric_specs(*score)),
    MetricSpec("averaged_checkpoints", "checkpoints averaged", table=TABLE, method=METHOD),
)


def curve_decoder(run: LoadedRun, settings: EvalConfig) -> decoders.DecoderSpec | None:
    """The decoder of the curve: the first of `eval.decoders`, else of the default set, that is
    scored on the variant with its own model alone; None when there is none."""

    def usable(spec: decoders.DecoderSpec) -> bool:
        return spec.needs is None and spec.finds_length(run.model.cfg)

    for selection in (settings.decoders, ()):
        found = [
            s for s in decoders.scored_on(run.mask_kind, run.objective, selection) if usable(s)
        ]
        if found:
            return found[0]
    return None


def _scorer(run: LoadedRun, settings: EvalConfig, batches: list[dict]):
    """(score_of(model) -> (score, sem), the score's (name, label, format), what scores it) of
    the variant's curve; None where it has none. Plain text has no prompt to continue: its
    curve is the likelihood (bits per token: exact for AR, the ELBO bound for diffusion)."""
    if int(batches[0]["prefix_lengths"].max()) <= 1:
        if not likelihood.has_likelihood(run.objective):
            return None
        t_samples = settings.likelihood_t_samples

        def bits(model: Decoder) -> Score:
            rows = likelihood.row_nats(model, run.objective, batches, run.seed, t_samples)
            return likelihood.bits_per_token(*rows)

        what = "ELBO bound" if run.objective.model_kind == "diffusion" else "exact NLL"
        return bits, SCORES[2], ("likelihood", what)
    spec = curve_decoder(run, settings)
    if spec is None:
        return None
    score = SCORES[0] if run.task.text_metrics else SCORES[1]
    return (lambda model: score_model(spec, model, batches, run.task)), score, (spec.id, spec.label)


def score_model(spec: decoders.DecoderSpec, model: Decoder, batches: list[dict], task) -> Score:
    """(score, sem) of `model` decoded by `spec`: corpus BLEU on a translation task, else the
    exact-match share."""
    scores = scoring.decode_and_score(spec, decoders.Models(model), batches, task, 0)
    if not scores.texts:
        return mean_sem(scores.exact_match)
    hypotheses = [t["hypothesis"] for t in scores.texts]
    scalars, _ = translation.corpus_scores(hypotheses, [t["reference"] for t in scores.texts])
    return scalars["bleu"]


def evaluate(run: LoadedRun, settings: EvalConfig, log: Log) -> Measurement:
    """The evaluator: the score at every kept checkpoint (the picture `learning_curve`), and the
    last checkpoint against the mean of the newest `eval.learning_curve.average_last`."""
    num_examples, average_last = (
        settings.learning_curve.num_examples,
        settings.learning_curve.average_last,
    )
    batches = list(scoring.eval_batches(run.task, num_examples, settings.batch_size))
    found = _scorer(run, settings, batches)
    if found is None:
        return Measurement()  # No decoder of its own, or plain text with no likelihood.
    score_of, (name, label, shown_as), (decoder, decoder_label) = found
    # Checkpoints a training run beside this eval saves after the step every other evaluator
    # reads (run.step) are left out: one report, one step.
    steps = [s for s in checkpoint_history.kept_steps(run.run_dir) if s <= run.step]
    if len(steps) < 2:
        return Measurement(
            skipped=f"{len(steps)} checkpoint kept; a curve and averaging need 2 or more "
            "(train.keep_checkpoints)"
        )
    log(f"    learning curve: {decoder_label}, {len(steps)} checkpoints, {num_examples} rows")
    points = []
    for index, (step, model) in enumerate(checkpoint_history.models(run.run_dir, steps), start=1):
        points.append((step, *score_of(model)))
        shown = fmt_value(points[-1][1], shown_as)
        log(f"    learning curve: step {step} ({index}/{len(steps)}): {label} {shown}")
    if not points:
        raise FileNotFoundError(f"No readable checkpoint in {run.run_dir} (see the warnings).")
    log(f"    learning curve: averaging the newest {min(average_last, len(points))} checkpoints")
    averaged, averaged_steps = checkpoint_history.averaged_model(
        run.run_dir, average_last, up_to=run.step
    )
    last = points[-1][1:]
    averaged_score = last  # One checkpoint averaged is the last one.
    if len(averaged_steps) > 1:
        averaged_score = score_of(averaged)
    shown = fmt_value(averaged_score[0], shown_as)
    log(f"    learning curve: steps {averaged_steps} averaged: {label} {shown}")
    seconds, flops = checkpoint_history.training_cost(run.run_dir, [step for step, _, _ in points])
    curve = {
        "seconds": seconds,  # Training time to each step (metrics.jsonl), None where not logged.
        "flops": flops,
        "decoder": decoder,
        "decoder_label": decoder_label,
        "metric": name,
        "num_examples": sum(len(b["lengths"]) for b in batches),
        "steps": [step for step, _, _ in points],
        "values": [value for _, value, _ in points],
        "sems": [sem for _, _, sem in points],
        "averaged": averaged_score[0],
        "averaged_steps": averaged_steps,
    }
    return Measurement(
        metrics={
            f"{name}_last": last,
            f"{name}_averaged": averaged_score,
            f"{name}_averaging_gain": (averaged_score[0] - last[0], None),
            "averaged_checkpoints": (float(len(averaged_steps)), None),
        },
        pictures={"learning_curve": curve},
        info={"average_last": average_last, "averaged_steps": averaged_steps},
    )
