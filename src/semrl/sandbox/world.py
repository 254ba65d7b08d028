"""Generate the sandbox world from a seed and write it as files semrl already reads.

The world: a lexicon and grammar for H and L (lexicon.py, grammar.py); a knowledge base (each
agent's home place and favourite object); datasets:
- pretraining text for the base model: H sentences, KB facts, general-task demonstrations
  (extractive QA, fact recall, copying) and a small bilingual component over every concept (L
  sentences, dictionary lines, aligned H/L sentences, code-switched sentences), as real bases have
  seen a little Tibetan and a little aligned text;
- the general suite (held-out QA, fact recall as multiple choice, copying, general text);
- target tasks that generate L, as extending a model to Tibetan means: H->L translation with a
  small, narrow/biased parallel corpus (only some agents, actions and places) and an unbiased test
  set; L headline generation;
- preference pairs in H and in L; sentence-encoder pairs that make the reward encoder
  language-agnostic like a real multilingual encoder (H<->L pairs over every concept, paraphrases
  within each language, code-mixed variants).
Everything is a pure function of the seed and the spec.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from pydantic import Field

from semrl.api import StrictModel, atomic_write_json, atomic_write_jsonl, atomic_write_text, to_json
from semrl.sandbox.grammar import (
    Meaning,
    random_meaning,
    realise_h,
    realise_l,
    realise_l_headline,
    realise_mixed,
)
from semrl.sandbox.lexicon import SLOTS, Lexicon, build_lexicon
from semrl.sandbox.rm_claim import KINDS, kb_answer, kb_question


class ParallelSpec(StrictModel):
    train: int = Field(400, ge=8)
    test: int = Field(60, ge=4)
    dev: int = Field(
        40,
        ge=0,
        description="unbiased like test, meanings disjoint from train and test: each method's "
        "learning rate is chosen on it, so claims read on test are not chosen on test",
    )
    bias: dict[str, int] = Field(
        default_factory=lambda: {"agent": 4, "action": 4, "place": 4},
        description="parallel data covers only the first N concepts of these slots",
    )


class PretrainSpec(StrictModel):
    h_sentences: int = 3000
    l_sentences: int = 600
    qa: int = 1500
    fact_repeats: int = 30
    copying: int = 600
    dictionary_repeats: int = Field(
        3, ge=0, description="'H word = L word' lines, every synonym pair, this many times"
    )
    aligned: int = Field(
        400, ge=0, description="aligned 'H: ...' / 'L: ...' sentence pairs over every concept"
    )
    code_switched: int = Field(300, ge=0, description="L sentences with one or two H words")


class GeneralTestSpec(StrictModel):
    qa: int = 60
    facts: int = 16
    copying: int = 40
    text: int = 60


class WorldSpec(StrictModel):
    seed: int = 0
    sizes: dict[str, int] = Field(
        default_factory=lambda: {"agent": 8, "action": 8, "object": 10, "place": 8, "time": 4},
        description="concepts per slot (at most the lexicon's lists)",
    )
    parallel: ParallelSpec = Field(default_factory=ParallelSpec)
    headline_train: int = 200
    headline_test: int = 40
    pretrain: PretrainSpec = Field(default_factory=PretrainSpec)
    general_test: GeneralTestSpec = Field(default_factory=GeneralTestSpec)
    preference_pairs: int = 300
    encoder_pairs: int = Field(
        6000, description="random-meaning pairs: H<->L, H<->H, L<->L and code-mixed<->L"
    )


def aligned_line(h_text: str, l_text: str) -> str:
    """How aligned text appears in the base's pretraining (and how its own translation is probed)."""
    return f"H: {h_text}\nL: {l_text}"


QA_TEMPLATES = {
    "agent": ("Who {action} the {object}?", "agent"),
    "object": ("What did the {agent} {action_base}?", "object"),
    "place": ("Where did the {agent} {action_base} the {object}?", "place"),
}
ACTION_BASE = {
    "carried": "carry",
    "hauled": "haul",
    "sold": "sell",
    "traded": "trade",
    "painted": "paint",
    "colored": "color",
    "found": "find",
    "discovered": "discover",
    "cleaned": "clean",
    "washed": "wash",
    "bought": "buy",
    "purchased": "purchase",
    "mended": "mend",
    "repaired": "repair",
    "hid": "hide",
    "concealed": "conceal",
}


class World:
    """The lexicon, the knowledge base and every generator of the world's data."""

    def __init__(self, spec: WorldSpec):
        self.spec = spec
        self.lexicon: Lexicon = build_lexicon(spec.seed, spec.sizes or None)
        self.sizes = self.lexicon.sizes()
        rng = random.Random(spec.seed + 1)
        self.home = {a: rng.randrange(self.sizes["place"]) for a in range(self.sizes["agent"])}
        self.favourite = {a: rng.randrange(self.sizes["object"]) for a in range(self.sizes["agent"])}

    # -- sentences ---------------------------------------------------------------------------
    def h_word(self, slot: str, concept: int) -> str:
        return self.lexicon.h_words[slot][concept][0]

    def fact_sentences(self) -> list[str]:
        out = []
        for a in range(self.sizes["agent"]):
            agent = self.h_word("agent", a)
            out.append(f"The {agent} lives near the {self.h_word('place', self.home[a])}.")
            out.append(f"The {agent} likes the {self.h_word('object', self.favourite[a])}.")
        return out

    def qa_item(self, rng: random.Random) -> dict[str, Any]:
        meaning = random_meaning(rng, self.sizes)
        context = realise_h(meaning, self.lexicon, rng)
        words = {w.strip(",.").lower() for w in context.split()}
        used = {
            slot: next(w for w in self.lexicon.h_words[slot][getattr(meaning, slot)] if w in words)
            for slot in SLOTS
        }
        slot = rng.choice(list(QA_TEMPLATES))
        template, answer_slot = QA_TEMPLATES[slot]
        question = template.format(
            agent=used["agent"],
            action=used["action"],
            object=used["object"],
            action_base=ACTION_BASE[used["action"]],
        )
        return {"context": context, "question": question, "answers": [used[answer_slot]]}

    def fact_item(self, agent: int, kind: str, rng: random.Random) -> dict[str, Any]:
        name = self.h_word("agent", agent)
        if kind == "home":
            correct, slot, question = self.home[agent], "place", f"Where does the {name} live?"
        else:
            correct, slot, question = self.favourite[agent], "object", f"What does the {name} like?"
        others = [c for c in range(self.sizes[slot]) if c != correct]
        choices = [correct] + rng.sample(others, min(3, len(others)))
        rng.shuffle(choices)
        return {
            "question": question,
            "choices": [self.h_word(slot, c) for c in choices],
            "answer": choices.index(correct),
        }

    def copy_item(self, rng: random.Random) -> dict[str, Any]:
        pool = [
            w for slot in ("agent", "object", "place") for words in self.lexicon.h_words[slot] for w in words
        ]
        words = " ".join(rng.sample(pool, rng.randint(2, 5)))
        return {"context": words, "question": "Repeat the words.", "answers": [words]}

    # -- datasets -----------------------------------------------------------------------------
    def parallel(self, n: int, rng: random.Random, biased: bool) -> list[dict[str, Any]]:
        allowed = (
            {slot: list(range(min(k, self.sizes[slot]))) for slot, k in self.spec.parallel.bias.items()}
            if biased
            else None
        )
        rows: list[dict[str, Any]] = []
        for _ in range(n):
            meaning = random_meaning(rng, self.sizes, allowed)
            rows.append(
                {
                    "id": len(rows),
                    "source": realise_h(meaning, self.lexicon, rng),
                    "reference": realise_l(meaning, self.lexicon, rng),
                    "meaning": list(meaning),
                }
            )
        return rows

    def dev_split(self, n: int, rng: random.Random, taken: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Unbiased rows whose meanings appear in none of `taken` (train and test): the learning rate
        chosen on dev is then chosen on items no arm trained on and no claim is read from."""
        seen = {tuple(row["meaning"]) for row in taken}
        rows: list[dict[str, Any]] = []
        for _ in range(100 * max(n, 1)):
            if len(rows) == n:
                break
            meaning = random_meaning(rng, self.sizes)
            if tuple(meaning) in seen:
                continue
            seen.add(tuple(meaning))
            rows.append(
                {
                    "id": len(rows),
                    "source": realise_h(meaning, self.lexicon, rng),
                    "reference": realise_l(meaning, self.lexicon, rng),
                    "meaning": list(meaning),
                }
            )
        return rows

    def headlines(self, n: int, rng: random.Random) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for _ in range(n):
            meaning = random_meaning(rng, self.sizes)
            other = random_meaning(rng, self.sizes)._replace(agent=meaning.agent)
            article = realise_l(meaning, self.lexicon, rng) + " " + realise_l(other, self.lexicon, rng)
            rows.append(
                {
                    "id": len(rows),
                    "source": article,
                    "reference": realise_l_headline(meaning, self.lexicon),
                    "meaning": list(meaning),
                }
            )
        return rows

    def corrupt(self, meaning: Meaning, rng: random.Random) -> Meaning:
        slot = rng.choice(SLOTS)
        wrong = rng.choice([c for c in range(self.sizes[slot]) if c != getattr(meaning, slot)])
        return meaning._replace(**{slot: wrong})

    def preference(self, n: int, rng: random.Random, language: str) -> list[dict[str, Any]]:
        """Preference pairs grounded in the knowledge base, all in `language` ('h' or 'l'): the prompt
        asks where an agent lives or what it likes, chosen states the KB's answer, rejected the same
        sentence (same words and form) with a wrong place or object. Grammar: sandbox/rm_claim.py."""
        kinds = [kind for kind, slot in KINDS.items() if self.sizes[slot] > 1]
        if not kinds:
            raise ValueError("preference pairs need at least two places or two objects")
        rows = []
        for _ in range(n):
            agent, kind = rng.randrange(self.sizes["agent"]), rng.choice(kinds)
            truth = self.home[agent] if kind == "home" else self.favourite[agent]
            wrong = rng.choice([c for c in range(self.sizes[KINDS[kind]]) if c != truth])
            prompt = kb_question(kind, agent, self.lexicon, language, rng) + "\n"
            form = rng.randrange(2**31)  # one form (synonyms, word order) for both answers
            chosen = kb_answer(kind, agent, truth, self.lexicon, language, random.Random(form))
            rejected = kb_answer(kind, agent, wrong, self.lexicon, language, random.Random(form))
            rows.append(
                {
                    "prompt": prompt,
                    "chosen": chosen,
                    "rejected": rejected,
                    "language": language,
                    "category": "Chat",
                }
            )
        return rows

    def pretraining_text(self, rng: random.Random) -> list[str]:
        p = self.spec.pretrain
        texts = [realise_h(random_meaning(rng, self.sizes), self.lexicon, rng) for _ in range(p.h_sentences)]
        texts += self.fact_sentences() * p.fact_repeats
        for _ in range(p.qa):
            item = self.qa_item(rng)
            texts.append(
                f"Context: {item['context']}\nQuestion: {item['question']}\nAnswer: {item['answers'][0]}"
            )
        for _ in range(p.copying):
            item = self.copy_item(rng)
            texts.append(
                f"Context: {item['context']}\nQuestion: {item['question']}\nAnswer: {item['answers'][0]}"
            )
        for agent in range(self.sizes["agent"]):
            for kind in ("home", "like"):
                for _ in range(p.fact_repeats // 3):
                    item = self.fact_item(agent, kind, rng)
                    texts.append(f"Question: {item['question']}\nAnswer: {item['choices'][item['answer']]}")
        texts += self.bilingual_text(rng)
        rng.shuffle(texts)
        return texts

    def bilingual_text(self, rng: random.Random) -> list[str]:
        """The base's small bilingual component, over every concept (never only the narrow task's):
        L sentences, dictionary lines, aligned sentence pairs and code-switched L."""
        p = self.spec.pretrain
        texts = [realise_l(random_meaning(rng, self.sizes), self.lexicon, rng) for _ in range(p.l_sentences)]
        for _ in range(p.dictionary_repeats):
            for slot in SLOTS:
                for h_words, l_words in zip(
                    self.lexicon.h_words[slot], self.lexicon.l_words[slot], strict=True
                ):
                    texts += [f"{h} = {lw}" for h in h_words for lw in l_words]
        for _ in range(p.aligned):
            meaning = random_meaning(rng, self.sizes)
            texts.append(
                aligned_line(realise_h(meaning, self.lexicon, rng), realise_l(meaning, self.lexicon, rng))
            )
        for _ in range(p.code_switched):
            meaning = random_meaning(rng, self.sizes)
            texts.append(
                realise_mixed(meaning, self.lexicon, rng, tuple(rng.sample(SLOTS, rng.randint(1, 2))))
            )
        return texts

    def encoder_pairs(self, rng: random.Random) -> list[dict[str, str]]:
        """Contrastive pairs that make the encoder language-agnostic, as multilingual encoders are
        (LaBSE, SONAR: trained on translation pairs of every language): half H<->L over every
        concept, paraphrases within H and within L, and code-mixed L<->pure L. A side effect the
        paper reports for real encoders follows: code-mixed text with the right concepts scores
        close to the pure reference."""
        pairs = []
        for i in range(self.spec.encoder_pairs):
            meaning = random_meaning(rng, self.sizes)
            kind = i % 10
            if kind < 5:
                pair = (realise_h(meaning, self.lexicon, rng), realise_l(meaning, self.lexicon, rng))
            elif kind < 7:
                pair = (realise_h(meaning, self.lexicon, rng), realise_h(meaning, self.lexicon, rng))
            elif kind < 9:
                pair = (realise_l(meaning, self.lexicon, rng), realise_l(meaning, self.lexicon, rng))
            else:
                mixed = realise_mixed(meaning, self.lexicon, rng, tuple(rng.sample(SLOTS, rng.randint(1, 2))))
                pair = (mixed, realise_l(meaning, self.lexicon, rng))
            pairs.append({"anchor": pair[0], "positive": pair[1]})
        rng.shuffle(pairs)
        return pairs


def write_world(spec: WorldSpec, out: Path) -> dict[str, Path]:
    """Write every dataset of the world under `out` (atomic writes); returns the main paths."""
    world = World(spec)
    g = spec.general_test
    files: dict[str, Path] = {}

    def rng(name: str) -> random.Random:
        """Each dataset draws from its own stream, so changing one size changes nothing else (the
        pretraining text, and with it the cached base model, depends only on its own settings)."""
        return random.Random(f"{spec.seed}/{name}")

    def jsonl(name: str, rows: list[dict[str, Any]]) -> None:
        files[name] = out / f"{name}.jsonl"
        atomic_write_jsonl(files[name], rows)

    mt_train = world.parallel(spec.parallel.train, rng("mt_train"), biased=True)
    mt_test = world.parallel(spec.parallel.test, rng("mt_test"), biased=False)
    jsonl("mt_train", mt_train)
    jsonl("mt_test", mt_test)
    jsonl("mt_dev", world.dev_split(spec.parallel.dev, rng("mt_dev"), mt_train + mt_test))
    jsonl(
        "mt_train_unbiased", world.parallel(spec.parallel.train, rng("mt_train_unbiased"), biased=False)
    )  # ceiling
    jsonl("headline_train", world.headlines(spec.headline_train, rng("headline_train")))
    jsonl("headline_test", world.headlines(spec.headline_test, rng("headline_test")))
    jsonl("prefs_h", world.preference(spec.preference_pairs, rng("prefs_h"), "h"))
    jsonl("prefs_l", world.preference(spec.preference_pairs, rng("prefs_l"), "l"))
    jsonl("encoder_pairs", world.encoder_pairs(rng("encoder_pairs")))
    jsonl("general/qa", [world.qa_item(r) for r in [rng("general/qa")] for _ in range(g.qa)])
    jsonl("general/copy", [world.copy_item(r) for r in [rng("general/copy")] for _ in range(g.copying)])
    facts_rng = rng("general/facts")
    facts = [
        world.fact_item(a, kind, facts_rng) for a in range(world.sizes["agent"]) for kind in ("home", "like")
    ]
    jsonl("general/facts", facts[: max(g.facts, 1)])
    text_rng = rng("general/text")
    text = [realise_h(random_meaning(text_rng, world.sizes), world.lexicon, text_rng) for _ in range(g.text)]
    files["general/text"] = out / "general" / "text.txt"
    atomic_write_text(files["general/text"], "\n".join(text) + "\n")
    files["pretrain"] = out / "pretrain.txt"
    atomic_write_text(files["pretrain"], to_json(world.pretraining_text(rng("pretrain"))))
    suite = (
        "benchmarks:\n"
        "  - {name: qa, type: qa, file: qa.jsonl, lang: en, max_new_tokens: 8}\n"
        "  - {name: copy, type: qa, file: copy.jsonl, lang: en, max_new_tokens: 16}\n"
        "  - {name: facts, type: mc, file: facts.jsonl}\n"
        "  - {name: text, type: nll, file: text.txt}\n"
        "  - {name: drift, type: kl, file: text.txt}\n"
    )
    files["suite"] = out / "general" / "suite.yaml"
    atomic_write_text(files["suite"], suite)
    lexicon = {
        "h": world.lexicon.h_words,
        "l": world.lexicon.l_words,
        "home": world.home,
        "favourite": world.favourite,
    }
    files["world"] = out / "world.json"
    atomic_write_json(files["world"], {"spec": spec.model_dump(), "lexicon": lexicon})
    return files
