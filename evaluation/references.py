"""The variants an eval section names (a baseline, a draft, the judge of generative NLL, a timed
shape), checked before anything is evaluated: each must be a variant of the experiment (a
misspelt one gets "did you mean"), and a judge must be able to judge.

The judge of generative NLL (`eval.diffusion.ar_variant`) scores samples by their likelihood
under it, so it must be a next-token model whose teacher-forced logits are honest: an objective
of model_kind "next_token" and a mask kind with an exact cache (causal, prefix). A leaky
full-mask model, a CMLM or a diffusion model is refused in one line: by the plan, from the
judge variant's recipe, before anything trains (plan.py), and again by eval.py, from the trained
judge's config.json, where an eval override may name another.
"""

import difflib

from model.masks import MaskKind, kinds_where
from objectives import Objective, objective_of
from sections import EvalConfig, load_plan
from training import run_folder

JUDGE_KEY = "diffusion.ar_variant"


def unknown_variant(key: str, name: str, known: list[str]) -> ValueError:
    """The one-line error for a setting naming a variant the experiment lacks."""
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ValueError(f"eval.{key}={name!r} is not a variant of this experiment ({known}){hint}")


def check_names(settings: EvalConfig, known: list[str]) -> None:
    """Raises a ValueError for the first setting naming a variant not in `known`."""
    for key, name in settings.named_variants().items():
        if name not in known:
            raise unknown_variant(key, name, known)


def check_judge(settings: EvalConfig, run_dir: str) -> None:
    """Raises a ValueError when the judge of generative NLL, if trained, is no next-token model
    with an exact cache. `run_dir` is the judged run's (the judge has its seed, or is the
    judge variant's one trained seed)."""
    judge = settings.diffusion.ar_variant
    sibling = run_folder.sibling_run(run_dir, judge, any_seed=True) if judge else None
    if sibling is None:
        return  # Not named, or not trained: the quality evaluator says so.
    plan, _ = load_plan(run_folder.read_json(run_folder.config_path(sibling)))
    check_judge_recipe(judge, objective_of(plan.train.objective), plan.model.mask)


def check_judge_recipe(judge: str, objective: Objective, mask: MaskKind) -> None:
    """Raises a ValueError when the variant `judge`, trained with `objective` under `mask`,
    cannot judge samples: the plan asks before anything trains, the eval of a trained judge."""
    if not (objective.next_token and mask.exact_cache):
        raise ValueError(
            f"eval.{JUDGE_KEY}={judge!r} cannot judge samples: it is a "
            f"{objective.model_kind} model (objective {objective.id!r}) with mask {mask.id!r}; "
            "the judge of generative NLL must be a next-token model with a mask in "
            f"{kinds_where(lambda kind: kind.exact_cache)}"
        )
