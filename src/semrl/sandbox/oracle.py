"""The oracle: outputs parsed back to meanings and judged exactly.

Because every word of the world belongs to one concept of one slot, an output's meaning is read
off its words. Adequacy is the share of the five slots (three for headlines) filled with the
reference's concept, with no competing concept in the same slot; grammaticality is whether the
output is exactly one of the grammar's realisations of what it says; purity is the share of its
letters in the expected script.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from semrl.api import resolve_scripts, syllables, target_share
from semrl.sandbox.grammar import Meaning, h_variants, l_variants
from semrl.sandbox.lexicon import SLOTS, Lexicon

_H_WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class Judgement:
    adequacy: float  # share of slots right
    grammatical: bool
    purity: float  # share of letters in the expected script
    slots: dict[str, int | None]


def parse_h(text: str, lexicon: Lexicon) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {slot: set() for slot in SLOTS}
    for word in _H_WORD.findall(text.lower()):
        if word in lexicon.h_index:
            slot, concept = lexicon.h_index[word]
            found[slot].add(concept)
    return found


def parse_l(text: str, lexicon: Lexicon) -> dict[str, set[int]]:
    """Every syllable of the lexicon belongs to exactly one word, so a word is found where its
    first syllable starts a run of its syllables; particles and unknown syllables are skipped."""
    found: dict[str, set[int]] = {slot: set() for slot in SLOTS}
    sylls = syllables(text)
    for i, syllable in enumerate(sylls):
        word = lexicon.l_first.get(syllable)
        if word is not None and sylls[i : i + len(word)] == list(word):
            slot, concept = lexicon.l_index["\u0f0b".join(word)]
            found[slot].add(concept)
    return found


def judge(
    text: str, reference: Meaning, lexicon: Lexicon, language: str, slots: tuple[str, ...] = SLOTS
) -> Judgement:
    """Adequacy, grammaticality and purity of `text` (language 'h' or 'l') against a meaning."""
    found = parse_h(text, lexicon) if language == "h" else parse_l(text, lexicon)
    right = {slot: found[slot] == {getattr(reference, slot)} for slot in slots}
    adequacy = sum(right.values()) / len(slots)
    single = {slot: next(iter(found[slot])) if len(found[slot]) == 1 else None for slot in SLOTS}
    grammatical = False
    concepts = [concept for concept in (single[s] for s in SLOTS) if concept is not None]
    if len(concepts) == len(SLOTS) and slots == SLOTS:
        said = Meaning(*concepts)
        variants = h_variants(said, lexicon) if language == "h" else l_variants(said, lexicon)
        grammatical = text.strip() in variants
    purity = target_share(text, resolve_scripts("en" if language == "h" else "bo"))
    return Judgement(adequacy, grammatical, purity, single)
