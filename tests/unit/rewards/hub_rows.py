"""Sentences the reward tests write themselves: a narrow domain (weather reports), where a vague
sentence of the domain is a hub, close to every reference, as outputs of a narrow task are.

Each reference has a true paraphrase (same meaning, other words). Under the packaged MiniLM
encoder the paraphrases score about 0.92 and the generic sentences about 0.5 against every
reference (plain cosine), more than half a true translation's reward for saying nothing.
"""

from __future__ import annotations

import functools

PAIRS = [
    (
        "Heavy rain will fall in the north tomorrow morning.",
        "Tomorrow morning the north will get heavy rain.",
    ),
    ("Snow is expected in the mountains tonight.", "Tonight snow is likely to fall in the mountains."),
    ("The south will be sunny and warm on Monday.", "On Monday it will be warm and sunny in the south."),
    (
        "Strong winds will blow along the coast this afternoon.",
        "This afternoon the coast will see strong winds.",
    ),
    ("Fog will cover the valleys early in the day.", "Early in the day the valleys will be foggy."),
    (
        "Thunderstorms are likely in the east on Friday.",
        "On Friday storms with thunder are likely in the east.",
    ),
    ("Temperatures will drop below freezing overnight.", "Overnight it will get colder than zero degrees."),
    (
        "Light showers will reach the capital by evening.",
        "By evening a few light showers will arrive in the capital.",
    ),
    ("The west will stay dry and cloudy all week.", "All week the west will remain cloudy but dry."),
    ("A cold wind will come from the north on Sunday.", "On Sunday a cold northerly wind will arrive."),
    ("Hail may fall in the central plains this evening.", "This evening the central plains could see hail."),
    (
        "The weekend will bring clear skies to the islands.",
        "Over the weekend the islands will have clear skies.",
    ),
    (
        "Rain will spread to the western hills after midnight.",
        "After midnight the rain moves into the western hills.",
    ),
    ("It will be hot and humid in the city on Tuesday.", "On Tuesday the city will be humid and hot."),
    (
        "Clouds will build over the lakes during the afternoon.",
        "During the afternoon clouds will gather over the lakes.",
    ),
    (
        "Frost is expected in the northern farms at dawn.",
        "At dawn there will probably be frost on the northern farms.",
    ),
]
SOURCES = [  # French sources: the audit's source copy, code-mixing and source + filler candidates
    "De fortes pluies tomberont dans le nord demain matin.",
    "De la neige est attendue dans les montagnes cette nuit.",
    "Le sud sera ensoleillé et chaud lundi.",
    "Des vents forts souffleront le long de la côte cet après-midi.",
    "Le brouillard couvrira les vallées en début de journée.",
    "Des orages sont probables dans l'est vendredi.",
    "Les températures passeront sous zéro pendant la nuit.",
    "De légères averses atteindront la capitale d'ici le soir.",
    "L'ouest restera sec et nuageux toute la semaine.",
    "Un vent froid viendra du nord dimanche.",
    "De la grêle pourrait tomber sur les plaines centrales ce soir.",
    "Le week-end apportera un ciel dégagé aux îles.",
    "La pluie gagnera les collines de l'ouest après minuit.",
    "Il fera chaud et humide en ville mardi.",
    "Les nuages s'accumuleront au-dessus des lacs dans l'après-midi.",
    "Du givre est attendu dans les fermes du nord à l'aube.",
]
REFERENCES = [reference for reference, _ in PAIRS]
PARAPHRASES = [paraphrase for _, paraphrase in PAIRS]
GENERIC = [
    "The weather will be like this in the area.",
    "There will be some weather in parts of the country this week.",
]
PENALTIES = [  # the sibling paper's guards: length > 2.5x the batch median, repeated 4-grams > 0.15
    {"type": "length", "weight": -0.2, "start": 2.5, "end": 5.0},
    {"type": "repetition", "weight": -0.05, "n": 4, "threshold": 0.15},
]


def audit_rows() -> list[dict[str, str]]:
    return [{"reference": r, "paraphrase": p, "source": s} for (r, p), s in zip(PAIRS, SOURCES, strict=True)]


@functools.cache
def audited(mode: str | None = None, penalties: bool = False) -> dict:
    """`audit` of audit_rows() under semantic (plain, or contrast in `mode`) [+ PENALTIES], the bank
    drawn from the rows; cached, so the test files share each audit (a few seconds each on 2 cores)."""
    from semrl.rewards import RewardConfig, build_reward
    from semrl.rewards.audit import audit

    term = {"type": "semantic", **({"contrast": {"mode": mode}} if mode else {})}
    reward = build_reward(RewardConfig.model_validate({"rewards": [term, *(PENALTIES if penalties else [])]}))
    return audit(audit_rows(), reward, {"reference": "reference", "source": "source"}, "en", prepare=True)
