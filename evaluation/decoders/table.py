"""The decoders table's row type, the table itself, and how configs name its rows.

A decoder has a short stable `id` (`ar_cache`, `mask_predict_k4`): configs (`eval.decoders`,
`eval.speed.decoders`), the command line (`distill.py --decoder`) and metric keys
(`exact_match/ar_cache`) use it. Its `label` ("AR (cache)") is for people: the report shows it.
`lookup` also takes a label, so configs saved before ids existed keep working. Its parameters
(K, T, the length beam, ...) are its `params`, which results.json keeps and the verdicts read:
nothing parses them back out of an id, so renaming one loses no verdict.
"""

import dataclasses
import difflib
from collections.abc import Callable

import numpy as np
from flax import nnx

from data import vocab
from evaluation.report.schema import MetricSpec
from model import Decoder, GenerateOutput, MaskKind, ModelConfig
from model.diffusion import scores_eos_as_token
from objectives import Objective

# A decoder's family, and what the report's methods section says of it.
FAMILIES = {
    "AR": "one token per sequential pass, conditioned on every token before it.",
    "non-AR": (
        "every target token in parallel; mask-predict is given each row's reference target "
        "length (an oracle length) and appends EOS after it, except the decoders labelled "
        "*predicted length*, which take it from the model's length head; an AR decoder, and "
        "CTC, which collapses a canvas of tokens and blanks, find the end themselves."
    ),
    "exact-parallel": (
        "greedy AR's output in fewer sequential target passes (speculative, Jacobi); checked "
        "against greedy AR on every row."
    ),
    "diffusion": (
        "T denoising steps from an all-MASK target of each row's reference length (an oracle "
        "length, as mask-predict is given), or, in the decoders labelled *predicted length*, of "
        "the length head's likeliest length, then EOS (none after a window whose reference has "
        "none): the ancestral sampler unmasks each token "
        "at a random step, the confidence decoders the most probable first; a block_causal "
        "model is decoded in blocks of the model's block size, left to right, T steps each, "
        "with a KV cache of the prompt and the finished blocks."
    ),
}
# Diffusion's unmasking orders: MDLM's random one, the most confident tokens first, and the
# random one with each token's step drawn up front (first hitting: the ancestral distribution).
STRATEGIES = ("ancestral", "confidence", "first_hit")
# Where an exact-parallel decoder's drafts come from: a second AR or CMLM model, the model's own
# previous guesses (Jacobi), or the row's earlier tokens (prompt lookup).
DRAFTS = ("ar", "cmlm", "jacobi", "prompt_lookup")
Model = Decoder | tuple[nnx.GraphDef, nnx.State]
Scalars = dict[str, tuple[float, float | None]]  # name -> (value, sem over examples or None)


@dataclasses.dataclass(frozen=True)
class Prompts:
    """A batch of right-padded prompts and the room the decoder has after them."""

    prompts_BxP: np.ndarray
    prompt_lengths_B: np.ndarray
    # Each row's reference target length (EOS excluded): the oracle length that a non-AR decoder
    # without a length head is given. Timing passes max_new_tokens for every row.
    target_lengths_B: np.ndarray
    max_new_tokens: int  # Tokens a decoder may write after the widest prompt, EOS included.
    eos_id: int | None = vocab.EOS  # None: no EOS (timing runs every row to max_new_tokens).
    # A sampling decoder's key is jax.random.key(seed): the quality evaluator passes each
    # batch's index, so batches of equal prompts (plain text: BOS alone) get different samples.
    seed: int = 0
    # Whether each row's reference ends with EOS (None: every row does). One that does not (a
    # window cut from a longer text) counts all its tokens in `target_lengths_B`, and a decoder
    # given the oracle length writes no EOS after them: it writes what the reference holds.
    ends_B: np.ndarray | None = None

    def ends(self) -> np.ndarray:
        """Whether each row ends with EOS, as bools [B]."""
        if self.ends_B is None:
            return np.ones(len(self.prompt_lengths_B), bool)
        return np.asarray(self.ends_B, bool)


@dataclasses.dataclass(frozen=True)
class Models:
    """The variant's own model, and the second model a decoder `needs` (a baseline, a draft)."""

    model: Model
    second: Model | None = None


@dataclasses.dataclass(frozen=True)
class Params:
    """A decoder's parameters, as results.json keeps them for the verdicts; None: not its kind."""

    iterations: int | None = None  # Mask-predict's parallel passes K.
    # Mask-predict's length beam: the length head's likeliest lengths decoded side by side;
    # None: each row's reference length (the oracle length).
    length_beam: int | None = None
    steps: int | None = None  # Diffusion's denoising steps T (per block).
    strategy: str | None = None  # Diffusion's unmasking order: one of STRATEGIES.
    beams: int | None = None  # Beam search's beams.
    # What proposes the tokens an exact-parallel decoder verifies: one of DRAFTS; and how many
    # per pass (Jacobi: its block).
    draft: str | None = None
    draft_tokens: int | None = None
    canvas_ratio: int | None = None  # CTC's canvas slots per source token.
    top_p: float | None = None  # Nucleus sampling's mass (diffusion proposals); None: off.

    def __post_init__(self):
        if self.strategy not in (None, *STRATEGIES):
            raise ValueError(f"Decoder strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.draft not in (None, *DRAFTS):
            raise ValueError(f"Decoder draft must be one of {DRAFTS}, got {self.draft!r}")
        counts = ("iterations", "length_beam", "steps", "beams", "draft_tokens", "canvas_ratio")
        bad = [k for k in counts if getattr(self, k) is not None and getattr(self, k) < 1]
        if bad:
            raise ValueError(f"Decoder parameters {bad} must be >= 1")
        if self.top_p is not None and not 0 < self.top_p < 1:
            raise ValueError(f"Decoder top_p must be in (0, 1), got {self.top_p!r}")

    def to_json(self) -> dict:
        """The parameters that are set."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclasses.dataclass(frozen=True)
class DecoderSpec:
    """One row of the decoders table."""

    id: str  # Stable: configs, flags and metric keys.
    label: str  # For people: the report's tables and verdicts.
    family: str  # A key of FAMILIES.
    description: str  # One sentence for the report's methods section (Markdown).
    # An exact-parallel decoder returns model.ParallelOutput (GenerateOutput's fields, then its
    # target passes, drafted and accepted tokens per row).
    decode: Callable[[Models, Prompts], GenerateOutput]
    # Whether the decoder is scored on a variant, from the records of its attention mask kind
    # (model/masks.py) and its objective (objectives/).
    applies_to: Callable[[MaskKind, Objective], bool]
    # The mask of the random-weights model the decoder is timed on; None: not timed (it runs
    # the same program as another decoder).
    timing_mask: str | None
    # The key under config.eval that names the variant of the second model (same seed), e.g.
    # "nar.ar_variant"; None when the decoder needs one model.
    needs: str | None = None
    recomputes_prefix: bool = False  # O(L^2) per row: timed only up to no_cache_max_length.
    # Scored when `eval.decoders` is empty; False: only when `eval.decoders` names it (a decoder
    # whose cost is not worth paying in every experiment).
    default: bool = True
    # A row of the model's own length: scored only on models that find one (`finds_length`:
    # a length head, or a diffusion row's block model, which ends at its first EOS); timed with
    # a length head.
    needs_length_head: bool = False
    # The model architectures (ModelConfig.architecture) it is timed on; None: every one.
    architectures: tuple[str, ...] | None = None
    # ModelConfig fields of the random-weights model it is timed on, beyond the mask; or a
    # function of the timed variant's shape (its own mask, max_len widened) giving them.
    timing_config: dict | Callable[[ModelConfig], dict] = dataclasses.field(default_factory=dict)
    # Statistics of its own, beyond exact match: per row, from (its output, each row's
    # continuation, the models, the prompts); `summarize` turns the rows of every batch into
    # scalars, which `metrics` describe (stored per decoder, as `<name>/<id>`).
    statistics: Callable[..., dict[str, np.ndarray]] | None = None
    summarize: Callable[[dict[str, np.ndarray]], Scalars] | None = None
    metrics: tuple[MetricSpec, ...] = ()
    # The key under config.eval naming a variant whose model only `statistics` reads (the
    # decoder runs without it, and is timed alone): e.g. "diffusion.ar_variant", the AR model
    # that scores samples. It arrives as `models.second`; None where no such variant is trained.
    statistics_needs: str | None = None
    # Its statistics judge a sample without a reference (generative NLL, entropy): it is also
    # scored on plain text, whose prompt is BOS alone and has no continuation to compare with.
    reference_free: bool = False
    params: Params = Params()  # Never parsed from the id.

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"Decoder {self.id!r}: family must be one of {list(FAMILIES)}")
        if not self.id.isidentifier() or self.id != self.id.lower():
            raise ValueError(f"Decoder id {self.id!r} must be a lower-case identifier")
        if (self.statistics is None) != (self.summarize is None):
            raise ValueError(f"Decoder {self.id!r}: statistics and summarize go together")

    def finds_length(self, cfg: ModelConfig) -> bool:
        """Whether a model of `cfg` finds the length this row needs: any length where the row
        is given one; else its length head's likeliest, or, in a diffusion row, a block model's
        first EOS (BD3-LM; it has no length head)."""
        if not self.needs_length_head or cfg.length_head:
            return True
        return self.family == "diffusion" and scores_eos_as_token(cfg)

    def to_json(self) -> dict:
        """What results.json keeps of it."""
        return {
            "label": self.label,
            "family": self.family,
            "needs": self.needs,
            "description": self.description,
            "params": self.params.to_json(),
        }


DECODERS: dict[str, DecoderSpec] = {}


def register_family(name: str, about: str) -> None:
    """Adds a decoder family: `about` is what the report's methods section says of it."""
    if FAMILIES.get(name, about) != about:
        raise ValueError(f"Decoder family {name!r} is already registered")
    FAMILIES[name] = about


def register(spec: DecoderSpec) -> DecoderSpec:
    """Adds a decoder to the table (a later spec with the same id replaces the earlier one)."""
    taken = [s.id for s in DECODERS.values() if s.label == spec.label and s.id != spec.id]
    if taken:
        raise ValueError(f"Decoder label {spec.label!r} is already decoder {taken[0]!r}'s")
    DECODERS[spec.id] = spec
    return spec


def describe(used: list[DecoderSpec]) -> dict:
    """results.json's `decoders` {id: what it keeps of the spec} and `families` {family: what
    the methods section says of it}, for the decoders used."""
    return {
        "decoders": {spec.id: spec.to_json() for spec in used},
        "families": {
            family: about
            for family, about in FAMILIES.items()
            if any(spec.family == family for spec in used)
        },
    }


def lookup(names) -> list[DecoderSpec]:
    """The specs of `names` (ids, or labels as configs saved them), in that order; a ValueError
    names any unknown one."""
    by_label = {spec.label: spec for spec in DECODERS.values()}
    unknown = [name for name in names if name not in DECODERS and name not in by_label]
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(DECODERS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"Unknown decoders {unknown}; the decoders table has {list(DECODERS)}.{hint}"
        )
    return [DECODERS.get(name) or by_label[name] for name in names]


def scored_on(mask_kind: MaskKind, objective: Objective, selection=()) -> list[DecoderSpec]:
    """The decoders scored on a variant (its mask kind's and objective's records), in table
    order: those `selection` names, or else every default one."""
    chosen = lookup(selection) if selection else [s for s in DECODERS.values() if s.default]
    return [spec for spec in chosen if spec.applies_to(mask_kind, objective)]


def next_token_model(*, exact_cache: bool = True) -> Callable[[MaskKind, Objective], bool]:
    """Scored on next-token models whose KV cache is exact (causal, prefix); with
    `exact_cache=False`, on those whose targets see every target (full, prefix_full: leaky)."""
    if exact_cache:
        return lambda mask, objective: objective.next_token and mask.exact_cache
    return lambda mask, objective: objective.next_token and mask.target_view == "all"


def masked_model(mask_kind: MaskKind, objective: Objective) -> bool:
    """Scored on models that fill masked tokens (CMLM: the masked or glancing objective)."""
    return objective.model_kind == "masked"


def diffusion_model(mask_kind: MaskKind, objective: Objective) -> bool:
    """Scored on masked-diffusion models (MDLM; BD3-LM under block_causal)."""
    return objective.model_kind == "diffusion" and mask_kind.target_view != "past"
