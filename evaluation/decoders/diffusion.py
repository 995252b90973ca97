"""The diffusion rows of the decoders table (model/diffusion_sampling.py), and the statistics that
judge a sample without a reference, which AR sampling (`ar_sample`, ar.py) shares.

Each row samples every target in T denoising steps from an all-MASK target of the reference
length (the oracle length), or, in the `_lb1` rows (translation's at T = 1, 4, 10, as its
mask-predict rows), of the model's own length: its length head's likeliest, or, for a block
model, its blocks until one holds EOS (BD3-LM); then appends EOS (not to a window cut without
one, nor to a block model's row that wrote none: a row writes what its reference holds); a
`block_causal` model is sampled block by block with its own block size and a KV cache.
`diffusion_t{T}` is MDLM's ancestral sampler at temperature 1; `diffusion_conf_t{T}` commits the
most confident argmax proposals first (LLaDA, MaskGIT); `diffusion_fh_t{T}` is the ancestral
sampler with each token's step drawn up front (first hitting: the same samples in distribution,
one call per step at which a row unmasks). T in (2, 4, 8, 16, 32, 128) makes a
quality-against-latency curve; T = 8 of the first two is in the default set, the others only
where `eval.decoders` (and `eval.speed.decoders`) name them.

Sample quality without a reference (MDLM, BD3-LM): the generative NLL, the NLL per token that
the experiment's AR model (`eval.diffusion.ar_variant`, same seed) gives each sample's tokens
given its prompt; and each sample's entropy, that of its tokens' unigram distribution, which
is low for repetitive text that an AR model may still find likely. Shape legend: B rows, L
tokens, V vocab.
"""

import jax
import numpy as np
from flax import nnx

from data import vocab
from evaluation import forward
from evaluation.decoders.table import (
    DecoderSpec,
    GenerateOutput,
    Models,
    Params,
    Prompts,
    Scalars,
    diffusion_model,
    register,
)
from evaluation.report.schema import QUALITY, MetricSpec
from evaluation.stats import mean_sem, ratio_mean_sem
from model import DiffusionOutput, ModelConfig, diffusion_generate

STEPS = (2, 4, 8, 16, 32, 128)  # T = 4 and 16: a block of 4 or 16 in as many steps as tokens.
DEFAULT_STEPS = 8
METRICS = (
    MetricSpec(
        "gen_nll",
        "generative NLL",
        "number",
        QUALITY,
        per_decoder=True,
        method="**Generative NLL**: the NLL per token (nats) that the experiment's AR model "
        "(`eval.diffusion.ar_variant`, same seed) gives each sample's tokens after its prompt, "
        "its EOS excluded (the diffusion decoders place it at the oracle length); token-weighted "
        "over the samples, with the ratio estimator's sem. Lower is likelier under the AR model, "
        "but repetitive text scores well too: read it with the sample entropy.",
        verdicts=({"rule": "parallel_steps", "strategy": "ancestral"},),
    ),
    MetricSpec(
        "sample_entropy",
        "sample entropy",
        "number",
        QUALITY,
        per_decoder=True,
        method="**Sample entropy**: the entropy (nats) of each sample's token unigram "
        "distribution (its EOS excluded), averaged over samples, as MDLM and BD3-LM report it: "
        "a sample that repeats a few tokens scores low.",
        verdicts=({"rule": "sample_quality", "priority": 4},),
    ),
    MetricSpec(
        "calls_per_block",
        "model calls per block",
        "number",
        QUALITY,
        per_decoder=True,
        method="**Model calls per block**: the denoising passes a block of targets took, at "
        "most its T steps: a step that unmasked nothing reuses the last logits (the model reads "
        "no time, so the same tokens give the same logits); averaged over the batches' rows.",
    ),
)


def unigram_entropy(tokens: np.ndarray) -> float:
    """The entropy (nats) of the distribution of the tokens in one sample; 0.0 when empty."""
    if len(tokens) == 0:
        return 0.0
    _, counts = np.unique(np.asarray(tokens), return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def generative_nll(
    ar_model, tokens_BxL, prompt_lengths_B, content_lengths_B
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the summed NLL (nats) that `ar_model` gives the `content_lengths_B` tokens after
    each prompt in `tokens_BxL` (each from the tokens before it), and their number."""
    if isinstance(ar_model, tuple):
        ar_model = nnx.merge(*ar_model)
    prompt_lengths_B = np.asarray(prompt_lengths_B)
    ends_B = prompt_lengths_B + np.asarray(content_lengths_B)
    # Only the columns up to the last scored token are read (a sampler's EOS slot is not).
    tokens_BxL = np.asarray(tokens_BxL)[:, : max(int(ends_B.max()), 2)]
    B, L = tokens_BxL.shape
    if L - 1 > ar_model.cfg.max_len:
        raise ValueError(
            f"Samples of {L} tokens do not fit the AR model's max_len={ar_model.cfg.max_len}: "
            "eval.diffusion.ar_variant must be trained on the same data"
        )
    # The last token is only predicted, never fed: position t predicts token t + 1.
    logits_BxTxV = forward.logits(
        ar_model, tokens_BxL[:, :-1], np.minimum(ends_B, L - 1), prompt_lengths_B
    )
    log_probs_BxTxV = np.asarray(jax.nn.log_softmax(logits_BxTxV, axis=-1))
    nll_BxT = -np.take_along_axis(log_probs_BxTxV, tokens_BxL[:, 1:, None], axis=-1)[..., 0]
    t_1xT = np.arange(L - 1)[None, :]
    scored_BxT = (t_1xT >= prompt_lengths_B[:, None] - 1) & (t_1xT < ends_B[:, None] - 1)
    return (nll_BxT * scored_BxT).sum(axis=1), scored_BxT.sum(axis=1).astype(np.float64)


def sample_statistics(
    out: DiffusionOutput, generated: list[np.ndarray], models: Models, prompts: Prompts
) -> dict[str, np.ndarray]:
    """Per row: its sample's unigram entropy, a diffusion sampler's model calls per block (its
    batch's), and, given an AR model (`models.second`), the summed NLL of its tokens under that
    model and their number (an EOS ending it excluded)."""
    contents = [
        g[:-1] if len(g) and prompts.eos_id is not None and g[-1] == prompts.eos_id else g
        for g in generated
    ]
    rows = {"entropy": np.array([unigram_entropy(c) for c in contents])}
    if isinstance(out, DiffusionOutput):  # A diffusion sampler's (AR sampling shares these rows).
        rows["calls_per_block"] = np.asarray(out.calls_per_block_B, np.float64)
    if models.second is not None:
        ar_cfg = _config_of(models.second)
        sample_cfg = _config_of(models.model)
        if ar_cfg.vocab_size != sample_cfg.vocab_size:
            raise ValueError(
                f"eval.diffusion.ar_variant's vocab_size is {ar_cfg.vocab_size}, the sampled "
                f"model's {sample_cfg.vocab_size}: it must be trained on the same data"
            )
        rows["nll_sum"], rows["nll_count"] = generative_nll(
            models.second, out.tokens_BxL, prompts.prompt_lengths_B, [len(c) for c in contents]
        )
    return rows


def summarize(rows: dict[str, np.ndarray]) -> Scalars:
    """The metrics of METRICS (the generative NLL only where an AR model scored the samples)."""
    scalars = {"sample_entropy": mean_sem(rows["entropy"])}
    if "calls_per_block" in rows:
        scalars["calls_per_block"] = mean_sem(rows["calls_per_block"])
    if "nll_sum" in rows:
        scalars["gen_nll"] = ratio_mean_sem(rows["nll_sum"], rows["nll_count"])
    return scalars


def _config_of(model) -> ModelConfig:
    return nnx.merge(*model).cfg if isinstance(model, tuple) else model.cfg


# What a sampling decoder's row sets to be scored without a reference.
SAMPLE_QUALITY = dict(
    statistics=sample_statistics,
    summarize=summarize,
    metrics=METRICS,
    statistics_needs="diffusion.ar_variant",
    reference_free=True,
)


def timed_blocks(cfg: ModelConfig) -> dict:
    """The block size a diffusion row is timed with: the timed variant's under block_causal,
    else one block covering every token (MDLM)."""
    return {"block_size": cfg.mask.block_size(cfg) or cfg.max_len}


def _target_room(models: Models, prompts: Prompts, predicted_length: bool) -> int:
    """The static target width, the same for every batch of an evaluation (one compile): the
    room after the prompts, less the EOS slot (appended, never fed), except for an oracle-length
    row where the model has a position for it too (a window without EOS fills it with a token)."""
    eos = prompts.eos_id is not None
    if predicted_length or not eos:
        return prompts.max_new_tokens - eos
    fits = _config_of(models.model).max_len - prompts.prompts_BxP.shape[1]
    return max(min(prompts.max_new_tokens, fits), prompts.max_new_tokens - 1)


def without_eos(out: DiffusionOutput, prompts: Prompts) -> DiffusionOutput:
    """`out` with the EOS appended to a row whose reference has none (a window cut from a longer
    text) taken off: each row holds what its reference holds."""
    drop_B = (~prompts.ends()) & (prompts.eos_id is not None)
    if not drop_B.any():
        return out
    tokens_BxL, lengths_B = np.array(out.tokens_BxL), np.array(out.lengths_B)
    rows_B = np.flatnonzero(drop_B)
    tokens_BxL[rows_B, lengths_B[rows_B] - 1] = vocab.PAD
    return out._replace(tokens_BxL=tokens_BxL, lengths_B=lengths_B - drop_B)


def _decode_fn(num_steps: int, strategy: str, top_p: float | None, predicted_length: bool):
    """The row's decode: T steps by `strategy` (the confidence strategy at temperature 0, MDLM's
    ancestral at 1), of the given or the predicted length; a window gets no EOS."""
    temperature = 0.0 if strategy == "confidence" else 1.0

    def decode(models: Models, prompts: Prompts) -> GenerateOutput:
        max_target_len = _target_room(models, prompts, predicted_length)
        lengths_B = np.minimum(prompts.target_lengths_B, max_target_len)
        out = diffusion_generate(
            models.model,
            prompts.prompts_BxP,
            prompts.prompt_lengths_B,
            None if predicted_length else lengths_B,
            num_steps=num_steps,
            mask_id=vocab.MASK,
            strategy=strategy,
            temperature=temperature,
            top_p=1.0 if top_p is None else top_p,
            rng=jax.random.key(prompts.seed),
            eos_id=prompts.eos_id,
            max_target_len=max_target_len,
        )
        return out if predicted_length else without_eos(out, prompts)

    return decode


def _description(num_steps: int, strategy: str, top_p: float | None, predicted: bool) -> str:
    """The row's sentence for the report's methods section."""
    how = {
        "confidence": "commits each step's most confident argmax proposals first (LLaDA's "
        "low-confidence remasking), k per step on a linear schedule",
        "ancestral": "is MDLM's ancestral sampler at temperature 1: each masked token is "
        "unmasked at a step with probability 1 / (steps left), and kept",
        "first_hit": "is the ancestral sampler with each token's step drawn up front, uniform "
        "over the T steps (first hitting, Zheng et al. 2024): the same samples in distribution, "
        "one model call per step at which a row unmasks (at most the block's tokens)",
    }[strategy]
    length = (
        "the model's own length: its length head's likeliest (a length beam of 1; an "
        "encoder-decoder runs its encoder once a call), or a block model's blocks until one "
        "holds EOS (BD3-LM: the row ends at that EOS)"
        if predicted
        else "the reference length (oracle length)"
    )
    nucleus = "." if top_p is None else f", drawing each proposal from the top-p={top_p} set."
    return (
        f"Masked diffusion in {num_steps} denoising steps (per block of a block_causal model) "
        f"from an all-MASK target of {length}; it {how}{nucleus}"
    )


# A row's id and label by its strategy (evaluation/decoders/table.py STRATEGIES).
_ID_PREFIX = {"ancestral": "diffusion", "confidence": "diffusion_conf", "first_hit": "diffusion_fh"}
_LABEL = {"ancestral": "", "confidence": ", most confident first", "first_hit": ", first hitting"}


def diffusion_spec(
    num_steps: int,
    strategy: str,
    default: bool = False,
    top_p: float | None = None,
    predicted_length: bool = False,
) -> DecoderSpec:
    """The row sampling with T = `num_steps` steps (per block) by `strategy`, its proposals
    from the smallest set of tokens holding mass `top_p` (None: all); of each row's reference
    length, or (`predicted_length`) of the model's own: the length head's likeliest, or a block
    model's first EOS."""
    timing = (
        # One block over the target, as an encoder-decoder (its only diffusion mask) runs it.
        dict(timing_mask="prefix_full", needs_length_head=True)
        if predicted_length
        # An encoder-decoder has no block_causal mask to time.
        else dict(
            timing_mask="block_causal", timing_config=timed_blocks, architectures=("decoder",)
        )
    )
    return DecoderSpec(
        id=f"{_ID_PREFIX[strategy]}_t{num_steps}"
        + ("" if top_p is None else f"_p{round(100 * top_p)}")
        + ("_lb1" if predicted_length else ""),
        label=f"diffusion T={num_steps}"
        + _LABEL[strategy]
        + ("" if top_p is None else f", top-p {top_p}")
        + (", own length" if predicted_length else ""),
        family="diffusion",
        description=_description(num_steps, strategy, top_p, predicted_length),
        decode=_decode_fn(num_steps, strategy, top_p, predicted_length),
        applies_to=diffusion_model,
        default=default,
        params=Params(
            steps=num_steps,
            strategy=strategy,
            top_p=top_p,
            length_beam=1 if predicted_length else None,
        ),
        **timing,
        **SAMPLE_QUALITY,
    )


for _STRATEGY in ("ancestral", "confidence"):
    for _T in STEPS:
        register(diffusion_spec(_T, _STRATEGY, default=_T == DEFAULT_STEPS))
# First hitting: ancestral's samples in fewer calls; scored where `eval.decoders` names them.
for _T in STEPS:
    register(diffusion_spec(_T, "first_hit"))
# Nucleus sampling as BD3-LM samples (p = 0.9): scored where `eval.decoders` names them.
for _T in STEPS:
    register(diffusion_spec(_T, "ancestral", top_p=0.9))
# The model's own length (the length head's likeliest; a block model's first EOS, BD3-LM's
# variable length): T = 1, 4,
# 10 as translation's mask-predict K (experiments/translate.py), so that MDLM and CMLM meet at the
# same passes and length beam; and the study's T (experiments/diffusion.py: own lengths beside
# the oracle-length rows).
PREDICTED_LENGTH_STEPS = tuple(sorted({1, 4, 10, *STEPS}))
for _STRATEGY in ("ancestral", "confidence"):
    for _T in PREDICTED_LENGTH_STEPS:
        register(diffusion_spec(_T, _STRATEGY, predicted_length=True))
for _T in STEPS:  # Own lengths with nucleus sampling too (BD3-LM's variable-length samples).
    register(diffusion_spec(_T, "ancestral", top_p=0.9, predicted_length=True))
