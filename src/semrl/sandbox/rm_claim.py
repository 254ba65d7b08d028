"""The reward-model side experiment (paper 3, Hong et al. 2024): its preference pairs and claim C6.

Preference pairs are grounded in the world's knowledge base (each agent's home place and
favourite object): the prompt asks a KB question, the chosen answer states the KB's fact, the
rejected one the same sentence with a wrong place or object. Prompt and answers are in one
language, H or L:

    H  "Where does the farmer live?"          "The farmer lives near the river."
       "What does the farmer like?"           "The farmer likes the drum."
    L  AGENT་WHERE་LIVE་Q།                    AGENT་PLACE་ནང་LIVE་DECL།   (or PLACE་ནང་AGENT་LIVE་DECL།)
       AGENT་གིས་WHAT་LIKE་Q།                 AGENT་གིས་OBJECT་LIKE་DECL།  (or OBJECT་AGENT་གིས་LIKE་DECL།)

L is verb-final with case particles, like grammar.py's sentences; its content words come from the
generated lexicon. The function words below are made up for the sandbox; like grammar.py's
particles each ends in a consonant (two letters or more), so it can never be a lexicon syllable
and the oracle's parser skips it. The H answers are the sentences the base model was pretrained
on (world.fact_sentences), so an RM trained on H pairs starts from a model that knows the facts.

C6: "an RM trained on H judges L pairs about as well as one trained on (machine-translated) L".
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from typing import Any

from semrl.api import bootstrap_mean, bootstrap_paired_difference
from semrl.sandbox.grammar import ERGATIVE, LOCATIVE, SHAD
from semrl.sandbox.lexicon import TSHEG, Lexicon

L_WHERE, L_WHAT, L_LIVE, L_LIKE, L_QUESTION, L_STATEMENT = "ཀར", "ཅིག", "སྡོད", "དགའ", "ཨམ", "ཡོད"
KINDS = {"home": "place", "like": "object"}  # question kind -> slot of its answer

_H_WORD = re.compile(r"[a-z]+")


def _word(table: dict[str, list[tuple[str, ...]]], slot: str, concept: int, rng: random.Random | None) -> str:
    words = table[slot][concept]
    return rng.choice(words) if rng else words[0]


def kb_question(
    kind: str, agent: int, lexicon: Lexicon, language: str, rng: random.Random | None = None
) -> str:
    """The KB question about `agent` (kind 'home' or 'like'); canonical words without `rng`."""
    if language == "h":
        name = _word(lexicon.h_words, "agent", agent, rng)
        return f"Where does the {name} live?" if kind == "home" else f"What does the {name} like?"
    name = _word(lexicon.l_words, "agent", agent, rng)
    if kind == "home":
        return TSHEG.join([name, L_WHERE, L_LIVE, L_QUESTION]) + SHAD
    return TSHEG.join([name, ERGATIVE, L_WHAT, L_LIKE, L_QUESTION]) + SHAD


def kb_answer(
    kind: str, agent: int, value: int, lexicon: Lexicon, language: str, rng: random.Random | None = None
) -> str:
    """'agent lives near place' (home) or 'agent likes object' (like); without `rng` the canonical
    sentence (first synonyms, one word order), with it a random synonym and form."""
    slot = KINDS[kind]
    if language == "h":
        name, thing = _word(lexicon.h_words, "agent", agent, rng), _word(lexicon.h_words, slot, value, rng)
        if kind == "home":
            prep = rng.choice(("near", "by")) if rng else "near"
            return f"The {name} lives {prep} the {thing}."
        return f"The {name} likes the {thing}."
    name, thing = _word(lexicon.l_words, "agent", agent, rng), _word(lexicon.l_words, slot, value, rng)
    fronted = bool(rng and rng.random() < 0.5)  # the place/object phrase before the agent
    if kind == "home":
        parts = [thing, LOCATIVE, name] if fronted else [name, thing, LOCATIVE]
        return TSHEG.join([*parts, L_LIVE, L_STATEMENT]) + SHAD
    parts = [thing, name, ERGATIVE] if fronted else [name, ERGATIVE, thing]
    return TSHEG.join([*parts, L_LIKE, L_STATEMENT]) + SHAD


def parse_kb_h(text: str, lexicon: Lexicon) -> tuple[str, bool, int, int | None] | None:
    """(kind, is_question, agent, value) of an H KB question or answer; None for anything else
    (the sandbox MT's reading of H; the value is None for questions)."""
    words = _H_WORD.findall(text.lower())
    question = text.strip().endswith("?")
    kind = "home" if {"live", "lives"} & set(words) else "like" if {"like", "likes"} & set(words) else None
    if kind is None:
        return None
    found: dict[str, list[int]] = {}
    for word in words:
        if word in lexicon.h_index:
            slot, concept = lexicon.h_index[word]
            found.setdefault(slot, []).append(concept)
    if len(found.get("agent", [])) != 1:
        return None
    values = found.get(KINDS[kind], [])
    if question:
        return (kind, True, found["agent"][0], None) if not values else None
    return (kind, False, found["agent"][0], values[0]) if len(values) == 1 else None


# -- claim C6 ---------------------------------------------------------------------------------
# Hong et al. report the English-trained RM 3-4 points *better* than target-language RMs; the claim
# reproduced here is the weaker "about as well": the H-trained RM is not worse on L pairs than the
# RM trained on machine-translated L pairs by more than 5 points of accuracy (the lower end of the
# paired 95% interval of acc(RM_H on L) - acc(RM_mtL on L) above -0.05). 5 points is just beyond
# the paper's own 3-4 point gap, i.e. a gap of the paper's size in the other direction still counts.
MARGIN = 0.05
LEARNED = 0.6  # the H-trained RM must learn H: lower end of its 95% interval on held-out H pairs above this
STATEMENT = "an RM trained on H judges L pairs about as well as one trained on machine-translated L"


def _mean(values: Sequence[float]) -> float:
    """Mean of a non-empty list (every caller has checked that it has values)."""
    return sum(values) / len(values)


def c6_claim(rm: dict[str, Any]) -> dict[str, Any]:
    """C6 from reward_model_transfer's result: testable when the H-trained RM learned H, reproduced
    when its accuracy on native L pairs is not worse than the machine-translated-L RM's by more than
    MARGIN (paired bootstrap over the same L pairs)."""
    pairs = (rm or {}).get("per_pair") or {}
    resamples, seed = int(rm.get("resamples", 1000)) if rm else 1000, int(rm.get("seed", 0)) if rm else 0
    h_on_h, h_on_l, l_on_l = (
        pairs.get("rm_h_on_h") or [],
        pairs.get("rm_h_on_l") or [],
        pairs.get("rm_l_on_l") or [],
    )
    ceiling = pairs.get("ceiling_on_l") or []
    rule = (
        f"testable when the H-trained RM learned H (lower end of its 95% interval on held-out H pairs "
        f"> {LEARNED}); reproduced when the paired 95% interval of acc(RM_H on L) - acc(RM_mtL on L) "
        f"has its lower end above -{MARGIN} (not worse by more than {MARGIN * 100:.0f} points)"
    )
    evidence: dict[str, Any] = {"rule": rule, "margin": MARGIN, "learned_threshold": LEARNED}

    def verdict(status: str, reason: str) -> dict[str, Any]:
        return {
            "id": "C6",
            "statement": STATEMENT,
            "status": status,
            "reproduced": status == "reproduced",
            "reason": reason,
            "evidence": evidence,
        }

    vectors = {"rm_h_on_h": h_on_h, "rm_h_on_l": h_on_l, "rm_l_on_l": l_on_l, "ceiling_on_l": ceiling}
    for name, values in vectors.items():
        if values:
            evidence[name] = {
                "accuracy": _mean(values),
                "ci95": bootstrap_mean(values, resamples, seed),
                "n": len(values),
            }
    if not h_on_h:
        return verdict("not testable", "no held-out H pairs scored by the H-trained RM")
    learned_ci = evidence["rm_h_on_h"]["ci95"]
    if not learned_ci[0] > LEARNED:
        return verdict(
            "not testable",
            f"the H-trained RM did not learn H: accuracy {_mean(h_on_h):.2f} on held-out "
            f"H pairs, 95% interval from {learned_ci[0]:.2f} (needs > {LEARNED})",
        )
    paired = bool(h_on_l) and len(h_on_l) == len(l_on_l)
    diff_ci = bootstrap_paired_difference(h_on_l, l_on_l, resamples, seed) if paired else None
    if diff_ci is None:
        return verdict(
            "not testable", "no native L pairs scored by both the H-trained and the machine-translated-L RM"
        )
    difference = _mean(h_on_l) - _mean(l_on_l)
    evidence["h_minus_mt_l_on_l"] = {"difference": difference, "ci95": diff_ci, "n": len(h_on_l)}
    if diff_ci[0] > -MARGIN:
        return verdict(
            "reproduced",
            f"RM_H - RM_mtL on native L = {difference:+.2f}, 95% interval "
            f"[{diff_ci[0]:+.2f}, {diff_ci[1]:+.2f}] lies above -{MARGIN}",
        )
    return verdict(
        "not reproduced",
        f"RM_H - RM_mtL on native L = {difference:+.2f}, 95% interval "
        f"[{diff_ci[0]:+.2f}, {diff_ci[1]:+.2f}] reaches below -{MARGIN}",
    )
