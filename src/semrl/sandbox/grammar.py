"""Realising meanings as sentences of H (English-like, subject-verb-object) and L (Tibetan script,
verb-final with case particles), each with several valid paraphrases.

A meaning is a tuple of concept indices, one per slot: (agent, action, object, place, time).
H: "The AGENT ACTION the OBJECT near|by the PLACE in the TIME."  or  "In the TIME, the AGENT ...".
L: "TIME་AGENT་གིས་PLACE་ནང་OBJECT་ACTION་སོང།"  or with the agent before the time.
L particles (གིས ergative, ནང locative, སོང past) end in a consonant; lexicon words never do,
so a parser can always tell them apart.
"""

from __future__ import annotations

import itertools
import random
from typing import NamedTuple

from semrl.sandbox.lexicon import SLOTS, TSHEG, Lexicon

ERGATIVE, LOCATIVE, PAST, SHAD = "གིས", "ནང", "སོང", "\u0f0d"
H_PREPOSITIONS = ("near", "by")


class Meaning(NamedTuple):
    agent: int
    action: int
    object: int
    place: int
    time: int


def random_meaning(
    rng: random.Random, sizes: dict[str, int], allowed: dict[str, list[int]] | None = None
) -> Meaning:
    return Meaning(*(rng.choice(list((allowed or {}).get(slot) or range(sizes[slot]))) for slot in SLOTS))


def h_sentence(w: dict[str, str], prep: str, time_first: bool) -> str:
    core = f"the {w['agent']} {w['action']} the {w['object']} {prep} the {w['place']}"
    if time_first:
        return f"In the {w['time']}, {core}."
    return f"{core[0].upper()}{core[1:]} in the {w['time']}."


def l_sentence(w: dict[str, str], agent_first: bool) -> str:
    agent = f"{w['agent']}{TSHEG}{ERGATIVE}"
    head = [agent, w["time"]] if agent_first else [w["time"], agent]
    return (
        TSHEG.join(head + [f"{w['place']}{TSHEG}{LOCATIVE}", w["object"], f"{w['action']}{TSHEG}{PAST}"])
        + SHAD
    )


def _words(meaning: Meaning, table, rng: random.Random | None) -> dict[str, str]:
    return {
        slot: (
            rng.choice(table[slot][getattr(meaning, slot)]) if rng else table[slot][getattr(meaning, slot)][0]
        )
        for slot in SLOTS
    }


def realise_h(meaning: Meaning, lexicon: Lexicon, rng: random.Random | None = None) -> str:
    """The canonical H sentence, or with `rng` a random paraphrase (synonyms, order, preposition)."""
    if rng is None:
        return h_sentence(_words(meaning, lexicon.h_words, None), H_PREPOSITIONS[0], False)
    return h_sentence(_words(meaning, lexicon.h_words, rng), rng.choice(H_PREPOSITIONS), rng.random() < 0.5)


def realise_l(meaning: Meaning, lexicon: Lexicon, rng: random.Random | None = None) -> str:
    if rng is None:
        return l_sentence(_words(meaning, lexicon.l_words, None), False)
    return l_sentence(_words(meaning, lexicon.l_words, rng), rng.random() < 0.5)


def realise_mixed(meaning: Meaning, lexicon: Lexicon, rng: random.Random, h_slots: tuple[str, ...]) -> str:
    """An L sentence whose words for `h_slots` are H words (code-switching): the concepts are all
    right, the language is not. Real bilingual text has it, and a multilingual encoder scores it
    close to the pure sentence, which is the temptation the language reward guards against."""
    w = _words(meaning, lexicon.l_words, rng)
    for slot in h_slots:
        w[slot] = rng.choice(lexicon.h_words[slot][getattr(meaning, slot)])
    return l_sentence(w, rng.random() < 0.5)


def realise_l_headline(meaning: Meaning, lexicon: Lexicon) -> str:
    """A headline in L: agent, object and action (what happened), verb-final."""
    return (
        TSHEG.join(
            [
                lexicon.l_words["agent"][meaning.agent][0],
                lexicon.l_words["object"][meaning.object][0],
                f"{lexicon.l_words['action'][meaning.action][0]}{TSHEG}{PAST}",
            ]
        )
        + SHAD
    )


def _all_words(meaning: Meaning, table) -> list[dict[str, str]]:
    options = [table[slot][getattr(meaning, slot)] for slot in SLOTS]
    return [dict(zip(SLOTS, picks, strict=True)) for picks in itertools.product(*options)]


def h_variants(meaning: Meaning, lexicon: Lexicon) -> set[str]:
    """Every grammatical H realisation of a meaning."""
    return {
        h_sentence(w, prep, first)
        for w in _all_words(meaning, lexicon.h_words)
        for prep in H_PREPOSITIONS
        for first in (False, True)
    }


def l_variants(meaning: Meaning, lexicon: Lexicon) -> set[str]:
    return {l_sentence(w, first) for w in _all_words(meaning, lexicon.l_words) for first in (False, True)}
