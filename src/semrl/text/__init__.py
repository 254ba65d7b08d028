"""Text layer: scripts, Tibetan syllables and normalisation, Chinese characters, metric tokenizers."""

from semrl.text.chinese import characters, jieba_words
from semrl.text.scripts import (
    LANGUAGE_SCRIPTS,
    ScriptProfile,
    char_class,
    resolve_scripts,
    script_profile,
    target_share,
)
from semrl.text.tibetan import normalize_tibetan, spaced_syllables, syllables
from semrl.text.tokenize import MetricTokenizer, guess_lang, metric_tokenizer, words

__all__ = [
    "LANGUAGE_SCRIPTS",
    "MetricTokenizer",
    "ScriptProfile",
    "char_class",
    "characters",
    "guess_lang",
    "jieba_words",
    "metric_tokenizer",
    "normalize_tibetan",
    "resolve_scripts",
    "script_profile",
    "spaced_syllables",
    "syllables",
    "target_share",
    "words",
]
