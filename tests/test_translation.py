"""BLEU and chrF of translation tasks (evaluation/translation.py), through the quality evaluator,
the runner and the report, on a small fake byte-level translation task."""

import json
import os
from types import SimpleNamespace

import numpy as np
import pytest
import sacrebleu
from sacrebleu.metrics import BLEU, CHRF

from data import batching, vocab
from evaluation import decoders, environment, quality, report, runner, scoring, translation
from evaluation.report import paired
from evaluation.run import LoadedRun, Measurement
from model.masks import mask_kind
from plan import base_config, make_plan

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAIRS = [  # Non-ASCII bytes, and text an HTML page must escape.
    ("Der Hund läuft über die grüne Wiese.", "The dog runs across the green meadow."),
    ("Ich trinke gern <b>Kaffee</b> & Tee.", "I like to drink <b>coffee</b> & tea."),
    ("Das Wetter ist heute sehr schön.", "The weather is very nice today."),
    ("Wir fahren morgen früh nach Berlin.", "We are driving to Berlin tomorrow morning."),
    ("Sie liest ein Buch im Garten.", "She is reading a book in the garden."),
    ("Der Zug hat zehn Minuten Verspätung.", "The train is ten minutes late."),
]


class FakeTranslationTask:
    """Byte-level translation of PAIRS, cycling (id = FIRST_SYMBOL + byte), scored on text."""

    name = "fake_translation"
    label = "fake (de→en)"
    text_metrics = True
    num_symbols = vocab.NUM_BYTES
    vocab_size = vocab.vocab_size(vocab.NUM_BYTES)
    seq_len = 112

    def batch(self, step: int, batch_size: int, split: str = "eval") -> dict[str, np.ndarray]:
        del split
        rows = [PAIRS[(step * batch_size + r) % len(PAIRS)] for r in range(batch_size)]
        source_BxL, source_lengths_B = batching.pad_rows([self.ids(s) for s, _ in rows])
        target_BxM, target_lengths_B = batching.pad_rows([self.ids(t) for _, t in rows])
        return batching.seq2seq_batch(
            source_BxL, source_lengths_B, target_BxM, target_lengths_B,
            seq_len=self.seq_len, loss_on="target",
        )  # fmt: skip

    def outcome(self, source, generated) -> None:
        return None

    @staticmethod
    def ids(text: str) -> np.ndarray:
        return vocab.bytes_to_ids(text.encode("utf-8"))

    @staticmethod
    def detokenize(ids) -> str:
        return vocab.ids_to_bytes(ids).decode("utf-8", errors="replace")


def _decoder(name: str, answer) -> decoders.DecoderSpec:
    """A decoder that writes answer(source text) after each prompt, then EOS."""

    def decode(models, prompts):
        B, P = prompts.prompts_BxP.shape
        tokens = np.zeros((B, P + 128), np.int32)
        lengths = np.zeros(B, np.int32)
        for b, p in enumerate(prompts.prompt_lengths_B):
            prompt = prompts.prompts_BxP[b, :p]
            text = answer(FakeTranslationTask.detokenize(prompt))
            row = np.concatenate([prompt, FakeTranslationTask.ids(text), [vocab.EOS]])
            tokens[b, : len(row)], lengths[b] = row, len(row)
        return decoders.GenerateOutput(tokens, lengths)

    return decoders.DecoderSpec(name, name, "AR", "test", decode, lambda m, o: True, None)


def _oracle(source: str) -> str:
    return dict(PAIRS)[source]


def _first_half(source: str) -> str:
    words = _oracle(source).split()
    return " ".join(words[: len(words) // 2 + 1])


@pytest.fixture
def task():
    return FakeTranslationTask()


def _fake_model(task) -> SimpleNamespace:
    """What the quality evaluator reads of a model whose decoders are fakes."""
    cfg = SimpleNamespace(
        max_len=task.seq_len,
        length_head=False,
        attention_mask_kind="causal",
        mask=mask_kind("causal"),
    )
    return SimpleNamespace(cfg=cfg)


def _run(task, names: tuple[str, ...]) -> LoadedRun:
    config = base_config()
    config.eval.update(num_examples=len(PAIRS), batch_size=4, num_samples=len(PAIRS))
    config.eval.decoders = names
    run = LoadedRun("causal", 0, "/nowhere", _fake_model(task), make_plan(config, ""), 0)
    run.task = task  # LoadedRun.task is a cached property: this is what it would have built.
    return run


def test_bleu_and_chrf_agree_with_sacrebleu_called_directly():
    hypotheses = [_first_half(s) for s, _ in PAIRS]
    references = [t for _, t in PAIRS]
    scalars, signatures = translation.corpus_scores(hypotheses, references)
    bleu, chrf = scalars["bleu"], scalars["chrf"]
    assert bleu[0] == pytest.approx(sacrebleu.corpus_bleu(hypotheses, [references]).score)
    assert chrf[0] == pytest.approx(sacrebleu.corpus_chrf(hypotheses, [references]).score)
    assert 0 < bleu[0] < 100 and 0 < chrf[0] < 100 and bleu[1] > 0 and chrf[1] > 0
    for signature in signatures.values():
        assert f"nrefs:1|bs:{translation.BOOTSTRAP_RESAMPLES}|seed:12345|" in signature
        assert signature.endswith(f"version:{sacrebleu.__version__}")
    assert "|tok:13a|smooth:exp|" in signatures["bleu"] and "|nc:6|nw:0|" in signatures["chrf"]


@pytest.mark.parametrize("metric_class", [BLEU, CHRF])
def test_the_bootstrap_sem_is_that_of_resampled_corpora(metric_class):
    hypotheses, references = [_first_half(s) for s, _ in PAIRS], [t for _, t in PAIRS]
    draws = np.random.default_rng(translation.SEED).choice(len(PAIRS), size=(20, len(PAIRS)))
    scores = [  # sacrebleu's public API, on each resampled corpus.
        metric_class().corpus_score([hypotheses[i] for i in rows], [[references[i] for i in rows]])
        for rows in draws
    ]
    sem = translation.bootstrap_sem(metric_class(), hypotheses, references, 20)
    assert sem == pytest.approx(np.std([s.score for s in scores], ddof=1), rel=1e-5)


def test_the_bootstrap_survives_resamples_that_score_zero():
    # sacrebleu 2.6.0's own chrF bootstrap raises a TypeError here (a float among float32s).
    scalars, _ = translation.corpus_scores(["xyz qq", "foo"], ["the cat sat", "a b c d e f g"])
    assert all(np.isfinite(value) and 0 <= value for pair in scalars.values() for value in pair)


def test_the_paired_bootstrap_resamples_both_outputs_with_the_same_draws():
    hypotheses, references = [_first_half(s) for s, _ in PAIRS], [t for _, t in PAIRS]
    a = translation.sentence_stats(hypotheses, references)
    b = translation.sentence_stats(references[:1] + hypotheses[1:], references)  # One fixed.
    assert paired.paired_bootstrap(a, a, 50) == (0.0, 0.0)  # Independent sems: not 0.
    diff, sem = paired.paired_bootstrap(b, a, 20)
    bleu = [BLEU().corpus_score(h, [references]).score for h in (references[:1] + hypotheses[1:],
                                                                 hypotheses)]  # fmt: skip
    assert diff == pytest.approx(bleu[0] - bleu[1])
    draws = np.random.default_rng(translation.SEED).choice(len(PAIRS), size=(20, len(PAIRS)))
    fixed = references[:1] + hypotheses[1:]
    diffs = [
        BLEU().corpus_score([fixed[i] for i in rows], [[references[i] for i in rows]]).score
        - BLEU().corpus_score([hypotheses[i] for i in rows], [[references[i] for i in rows]]).score
        for rows in draws
    ]
    assert sem == pytest.approx(np.std(diffs, ddof=1), rel=1e-5)
    with pytest.raises(ValueError, match="Paired sentences differ"):
        paired.paired_bootstrap(a, a[:-1], 5)


def test_perfect_hypotheses_give_bleu_100():
    references = [t for _, t in PAIRS]
    scalars, _ = translation.corpus_scores(references, references)
    assert scalars == {name: pytest.approx((100.0, 0.0), abs=1e-9) for name in ("bleu", "chrf")}


def test_decode_and_score_gives_every_row_as_text(task):
    batches = list(scoring.eval_batches(task, 6, 4))
    scores = scoring.decode_and_score(
        _decoder("oracle", _oracle), decoders.Models(_fake_model(task)), batches, task, 2
    )
    expected = [{"source": s, "reference": t, "hypothesis": t} for s, t in PAIRS]
    assert scores.texts == expected and scores.samples == expected[:2]
    assert scores.exact_match.mean() == 1.0
    hypotheses = [t["hypothesis"] for t in scores.texts]
    scalars, signatures = translation.corpus_scores(hypotheses, [t for _, t in PAIRS])
    assert scalars["bleu"][0] == pytest.approx(100.0)
    assert scalars["chrf"][0] == pytest.approx(100.0)
    assert set(signatures) == {"bleu", "chrf"}


def test_the_quality_evaluator_reports_bleu_and_chrf_per_decoder(task, monkeypatch):
    monkeypatch.setitem(decoders.DECODERS, "oracle", _decoder("oracle", _oracle))
    monkeypatch.setitem(decoders.DECODERS, "half", _decoder("half", _first_half))
    run = _run(task, ("oracle", "half"))
    found = quality.evaluate_generation(run, run.config.eval, lambda _: None)
    assert found.metrics["bleu/oracle"] == pytest.approx((100.0, 0.0), abs=1e-9)
    for name in ("oracle", "half"):  # Every row is a sample here: score them directly.
        hypotheses = [row["hypothesis"] for row in found.samples[name]]
        references = [row["reference"] for row in found.samples[name]]
        assert references == [t for _, t in PAIRS]
        assert found.metrics[f"bleu/{name}"][0] == pytest.approx(
            sacrebleu.corpus_bleu(hypotheses, [references]).score
        )
        assert found.metrics[f"chrf/{name}"][0] == pytest.approx(
            sacrebleu.corpus_chrf(hypotheses, [references]).score
        )
    assert found.signatures["bleu"].startswith("nrefs:1|") and "chrf" in found.signatures
    assert found.sentences["bleu/oracle"] == translation.sentence_stats(references, references)


@pytest.mark.slow
def test_signatures_reach_results_json_and_the_report(tiny_workdir, tmp_path, monkeypatch):
    texts = [{"source": s, "reference": t, "hypothesis": _first_half(s)} for s, t in PAIRS]

    def fake_quality(run, settings, log):  # What evaluate_generation gives on a translation task.
        scalars, signatures = translation.corpus_scores(
            [t["hypothesis"] for t in texts], [t["reference"] for t in texts]
        )
        metrics = {f"{name}/ar_cache": value for name, value in scalars.items()}
        metrics["exact_match/ar_cache"] = (0.0, 0.0)
        return Measurement(metrics=metrics, samples={"ar_cache": texts}, signatures=signatures)

    fake = runner.Evaluator(fake_quality, "run", metrics=quality.GENERATION_METRICS)
    monkeypatch.setitem(runner.EVALUATORS, "fake_quality", fake)
    results = runner.evaluate_workdir(
        tiny_workdir, variants=["causal"], evaluators=["fake_quality"], log=lambda _: None
    )
    record = results["variants"][0]
    assert record["metrics"]["bleu/ar_cache"]["per_seed"] == [
        pytest.approx(sacrebleu.corpus_bleu([t["hypothesis"] for t in texts],
                                            [[t["reference"] for t in texts]]).score)
    ]  # fmt: skip
    path = report.write(str(tmp_path / "report"), {**results, **environment.describe(REPO)})
    with open(os.path.join(path, "results.json"), encoding="utf-8") as f:
        written = json.load(f)["variants"][0]
    assert written["signatures"] == record["signatures"]
    assert written["signatures"]["bleu"].startswith("nrefs:1|bs:")
    with open(os.path.join(path, "report.md"), encoding="utf-8") as f:
        markdown = f.read()
    assert markdown.count(record["signatures"]["bleu"]) == 1
    assert "source:     Ich trinke gern <b>Kaffee</b> & Tee." in markdown
