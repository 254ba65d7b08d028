"""The world's vocabulary: concepts by slot, their H words (English, two synonyms each) and L
words (generated Tibetan-script syllables, two synonyms each, distinct across the lexicon).

H words are real English so a reader can follow the sandbox; L words are made up by the code
from Tibetan letters and vowel signs, so no text is copied from anywhere.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

SLOTS = ("agent", "action", "object", "place", "time")

H_WORDS: dict[str, list[tuple[str, str]]] = {
    "agent": [
        ("farmer", "grower"),
        ("teacher", "tutor"),
        ("doctor", "healer"),
        ("child", "kid"),
        ("trader", "merchant"),
        ("monk", "priest"),
        ("herder", "shepherd"),
        ("driver", "coachman"),
    ],
    "action": [
        ("carried", "hauled"),
        ("sold", "traded"),
        ("painted", "colored"),
        ("found", "discovered"),
        ("cleaned", "washed"),
        ("bought", "purchased"),
        ("mended", "repaired"),
        ("hid", "concealed"),
    ],
    "object": [
        ("basket", "hamper"),
        ("boat", "vessel"),
        ("bell", "chime"),
        ("cart", "wagon"),
        ("lamp", "lantern"),
        ("rope", "cord"),
        ("tent", "shelter"),
        ("jar", "pot"),
        ("blanket", "quilt"),
        ("drum", "tabor"),
    ],
    "place": [
        ("river", "stream"),
        ("market", "bazaar"),
        ("hill", "slope"),
        ("temple", "shrine"),
        ("valley", "dale"),
        ("lake", "pond"),
        ("bridge", "crossing"),
        ("forest", "woods"),
    ],
    "time": [("morning", "dawn"), ("noon", "midday"), ("evening", "dusk"), ("night", "midnight")],
}

_CONSONANTS = list("ཀཁགངཅཆཇཉཏཐདནཔཕབམཙཚཛཝཞཟཡརལཤསཧ")
_VOWELS = ["", "\u0f72", "\u0f74", "\u0f7a", "\u0f7c"]  # a, i, u, e, o
TSHEG = "\u0f0b"


@dataclass
class Lexicon:
    h_words: dict[str, list[tuple[str, ...]]]  # slot -> concept index -> H synonyms
    l_words: dict[str, list[tuple[str, ...]]]  # slot -> concept index -> L synonyms (joined by tsheg)
    h_index: dict[str, tuple[str, int]] = field(default_factory=dict)  # H word -> (slot, concept)
    l_index: dict[str, tuple[str, int]] = field(default_factory=dict)
    l_first: dict[str, tuple[str, ...]] = field(default_factory=dict)  # first syllable -> word's syllables

    def __post_init__(self):
        for slot, concepts in self.h_words.items():
            for concept, words in enumerate(concepts):
                for word in words:
                    self.h_index[word] = (slot, concept)
        for slot, concepts in self.l_words.items():
            for concept, words in enumerate(concepts):
                for word in words:
                    self.l_index[word] = (slot, concept)
                    parts = tuple(word.split(TSHEG))
                    self.l_first[parts[0]] = parts

    def sizes(self) -> dict[str, int]:
        return {slot: len(concepts) for slot, concepts in self.h_words.items()}


def build_lexicon(seed: int, sizes: dict[str, int] | None = None) -> Lexicon:
    """H words from the lists above (cut to `sizes`); L words of 1-2 syllables drawn from a shuffled
    pool of consonant+vowel syllables, each syllable used by one word only, so L text segments
    into words unambiguously (the oracle relies on it)."""
    rng = random.Random(seed)
    pool = [c + v for c in _CONSONANTS for v in _VOWELS]
    rng.shuffle(pool)
    h_words: dict[str, list[tuple[str, ...]]] = {}
    l_words: dict[str, list[tuple[str, ...]]] = {}
    counts = {slot: (sizes or {}).get(slot, len(H_WORDS[slot])) for slot in SLOTS}
    for slot, n in counts.items():
        if not 1 <= n <= len(H_WORDS[slot]):
            raise ValueError(f"world.sizes.{slot}: between 1 and {len(H_WORDS[slot])}")
    words_needed = 2 * sum(counts.values())
    for slot in SLOTS:
        h_words[slot] = [tuple(words) for words in H_WORDS[slot][: counts[slot]]]
        l_words[slot] = []
        for _ in range(counts[slot]):
            synonyms = []
            for _ in range(2):
                words_needed -= 1
                length = 2 if len(pool) - 2 >= words_needed and rng.random() < 0.5 else 1
                synonyms.append(TSHEG.join(pool.pop() for _ in range(length)))
            l_words[slot].append(tuple(synonyms))
    return Lexicon(h_words, l_words)
