"""Language consistency: does an output stay in the target script?

The paper's language reward is binary: 1 if the output is in the target language, 0 if it
mixes languages. We measure it as the share of letters in the target script(s), compared with a
threshold; digits, punctuation and spaces do not count.
"""

from __future__ import annotations

from collections.abc import Sequence

from semrl.metrics.surface import CorpusScore
from semrl.text.scripts import resolve_scripts, target_share

DEFAULT_THRESHOLD = 0.95


def passes_language(text: str, scripts: frozenset[str], threshold: float = DEFAULT_THRESHOLD) -> bool:
    return target_share(text, scripts) >= threshold


def language_consistency(
    hyps: Sequence[str],
    lang: str | None = None,
    script: str | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> CorpusScore:
    """Fraction of outputs in the target language, in [0, 1], and its signature."""
    scripts = resolve_scripts(lang, script)
    passed = sum(passes_language(h, scripts, threshold) for h in hyps)
    value = passed / len(hyps) if hyps else 0.0
    return CorpusScore(value, f"lang|scripts:{'+'.join(sorted(scripts))}|threshold:{threshold}|letters-only")
