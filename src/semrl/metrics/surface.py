"""BLEU and chrF++ from sacrebleu, with language-aware preprocessing (README: Metrics).

Chinese uses sacrebleu's own `zh` tokenizer on the raw strings. Tibetan has no sacrebleu
tokenizer, so each string becomes its syllables joined by single spaces, and BLEU runs with
tokenize='none' and chrF++ on that spaced string. Everything else uses sacrebleu's default
(13a), except scripts written without spaces, which use 'char'. Nothing here re-implements
BLEU: these are thin wrappers that choose the preprocessing and record it in the signature.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from semrl.text.tokenize import CHARACTER_CODES, TIBETAN_CODES, base_code, tibetan_tokens

if TYPE_CHECKING:
    from sacrebleu.metrics import BLEU, CHRF

_CHAR_LEVEL_CODES = frozenset({"ja", "th", "lo", "km", "my"})


def _identity(text: str) -> str:
    return text


def _tibetan_spaced(text: str) -> str:
    return " ".join(tibetan_tokens(text))


@dataclass(frozen=True)
class SurfaceSpec:
    """How strings of one language are prepared for sacrebleu."""

    preprocess: Callable[[str], str]
    bleu_tokenize: str
    note: str  # prefix recorded in the signature, e.g. "bo-syllables"


def surface_spec(lang: str | None) -> SurfaceSpec:
    code = base_code(lang)
    if code in TIBETAN_CODES:
        return SurfaceSpec(_tibetan_spaced, "none", "bo-syllables")
    if code in _CHAR_LEVEL_CODES:
        return SurfaceSpec(_identity, "char", "raw")
    if code in CHARACTER_CODES:
        return SurfaceSpec(_identity, "zh", "raw")
    return SurfaceSpec(_identity, "13a", "raw")


@cache
def bleu_metric(tokenize: str, sentence: bool) -> BLEU:
    from sacrebleu.metrics import BLEU

    return BLEU(tokenize=tokenize, effective_order=sentence)


@cache
def chrf_metric() -> CHRF:
    from sacrebleu.metrics import CHRF

    return CHRF(word_order=2)


def _clamp(score: float) -> float:
    """sacrebleu can return 100.00000000000004 from float rounding; keep the documented range."""
    return min(max(float(score), 0.0), 100.0)


@dataclass(frozen=True)
class CorpusScore:
    """A corpus-level score on its metric's scale, with the signature that says how it was computed."""

    score: float  # 0-100
    signature: str


def corpus_bleu(hyps: Sequence[str], refs: Sequence[str], lang: str | None) -> CorpusScore:
    spec = surface_spec(lang)
    metric = bleu_metric(spec.bleu_tokenize, False)
    result = metric.corpus_score([spec.preprocess(h) for h in hyps], [[spec.preprocess(r) for r in refs]])
    return CorpusScore(_clamp(result.score), f"pre:{spec.note}|{metric.get_signature()}")


def corpus_chrf(hyps: Sequence[str], refs: Sequence[str], lang: str | None) -> CorpusScore:
    spec = surface_spec(lang)
    metric = chrf_metric()
    result = metric.corpus_score([spec.preprocess(h) for h in hyps], [[spec.preprocess(r) for r in refs]])
    return CorpusScore(_clamp(result.score), f"pre:{spec.note}|{metric.get_signature()}")


def sentence_bleu(hyp: str, ref: str, lang: str | None) -> float:
    """Sentence BLEU (effective order, exp smoothing) on 0-100."""
    spec = surface_spec(lang)
    hyp_text = spec.preprocess(hyp)
    if not hyp_text.strip():
        return 0.0
    return _clamp(
        bleu_metric(spec.bleu_tokenize, True).sentence_score(hyp_text, [spec.preprocess(ref)]).score
    )


def sentence_chrf(hyp: str, ref: str, lang: str | None) -> float:
    """Sentence chrF++ on 0-100."""
    spec = surface_spec(lang)
    hyp_text = spec.preprocess(hyp)
    if not hyp_text.strip():
        return 0.0
    return _clamp(chrf_metric().sentence_score(hyp_text, [spec.preprocess(ref)]).score)
