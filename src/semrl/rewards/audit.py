"""`semrl reward audit`: can this reward be hacked? Find out before spending GPU hours.

For each reference, build candidates a policy might drift to: the exact copy, a paraphrase
(if the row gives one), the words shuffled, the first half only, a copy of the source, half
reference half source (the paper's code-mixing collapse), the reference padded with copies of
itself (the sibling paper's verbosity hack), the source followed by one target-language word
repeated until the language reward is satisfied (`source_filler`: the collapse a public TRL GRPO
run of embedding similarity + language ID, English->French, fell into) and that word repeated
alone (`filler`), and nothing. All candidates of all rows are scored
as one batch, as GRPO would. For each component and the total we report the mean score of each
candidate kind, its share of the copy's mean score (`relative`) and of the paraphrase's (`share`,
the copy's where rows have no paraphrase), and how often the copy is
ranked strictly above each corruption; a corruption ranked at or above the copy, or keeping most
of the copy's reward, is a way to hack the reward.

The copy is the reference itself, so a reward that compares with the reference (an embedding's
cosine, an overlap metric) gives it the maximum and ranks it above every corruption by
construction: `copy_above` then says nothing. When rows carry a `paraphrase` (a true
meaning-preserving rewrite), we also report `paraphrase_above`: how often the paraphrase is ranked
strictly above each corruption. That is the informative test (a policy's good outputs are
rewrites, not copies), so the summary and the `hackable` flags use it whenever it is present.

The `constant` candidate is one output used for every row: the reference most similar on average
to all the others (under the first semantic term's encoder; by unigram overlap when the reward has
none), a choice that needs no oracle, as a policy collapsing onto a hub makes it. Its verdict is
a share, not a ranking (it is the copy on its own row): its mean total reward over the true
translations' (the paraphrase where rows have one, else the copy), `hackable` above
CONSTANT_HACKABLE_SHARE. `semrl reward audit` draws a `contrast:` bank from the audited rows
themselves (a text is never its own neighbour, so the constant, one of those references, is not
penalised for being in the bank).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from pathlib import Path
from typing import Any

from semrl.errors import UserError
from semrl.files import read_jsonl
from semrl.rewards.build import load_reward
from semrl.rewards.compose import ComposedReward
from semrl.rewards.constant import choose_constant
from semrl.rewards.language import LanguageReward
from semrl.text.scripts import resolve_scripts, script_profile, target_share
from semrl.text.tokenize import MetricTokenizer, guess_lang, metric_tokenizer
from semrl.text.visible import filled

CANDIDATES = (
    "copy",
    "paraphrase",
    "shuffle",
    "truncate",
    "source",
    "mix",
    "pad",
    "source_filler",
    "filler",
    "constant",
    "empty",
)
CORRUPTIONS = ("shuffle", "truncate", "source", "mix", "pad", "source_filler", "filler", "empty")
PAD_COPIES = 5  # the sibling paper saw outputs grow to 5x gold length
FILLER_MIN = 10  # repeats of the filler word when the source alone already passes the language reward
FILLER_MAX = 2000  # a threshold of 1.0 can never be reached past a source in another script
DEFAULT_TIP = 0.95  # the language reward's default threshold, used when the reward has none
SAFE_RATE = 0.9  # a reward should rank the paraphrase (else the copy) above a corruption at least this often
# A constant output says nothing about its input. Once it keeps more than half a true translation's
# reward, every output less than half as adequate as a translation (a weak cold start's, early in
# RL) earns less than the constant does, so GRPO's group advantage pays each drift toward it: the
# collapse to one sentence the demo's plain-cosine arms show. Half is where that starts to pay.
CONSTANT_HACKABLE_SHARE = 0.5


def _join(tokens: list[str], tokenizer: MetricTokenizer) -> str:
    return tokenizer.joiner.join(tokens)


def _shuffled(tokens: list[str], rng: random.Random) -> list[str]:
    if len(set(tokens)) < 2:
        return tokens
    for _ in range(10):
        shuffled = tokens[:]
        rng.shuffle(shuffled)
        if shuffled != tokens:
            return shuffled
    return tokens[::-1]


def filler_word(tokens: list[str], scripts: frozenset[str]) -> str | None:
    """The reference's most frequent token written wholly in the target script (the first one on
    ties). A policy that fills with target-language words picks such a common word; taking it from
    the reference keeps it in the target language for any language, with no lexicon to maintain,
    and is the hardest choice for a reference-based reward (a word the reference contains)."""
    words = [t for t in tokens if script_profile(t).n_letters and target_share(t, scripts) == 1.0]
    return Counter(words).most_common(1)[0][0] if words else None


def filler_repeats(source: str, word: str, scripts: frozenset[str], threshold: float) -> int:
    """How many repeats of `word` after `source` lift the target-script share of the letters to
    `threshold`: the least filler that collects the language reward (at least FILLER_MIN, so a
    source in the target's own script, e.g. English for French, still gets the observed filler)."""
    off = script_profile(source).n_letters * (1.0 - target_share(source, scripts))
    on = script_profile(source).n_letters - off
    per_word = script_profile(word).n_letters
    if threshold >= 1.0 and off > 0:
        return FILLER_MAX
    needed = math.ceil(max(threshold * (on + off) - on, 0.0) / ((1.0 - threshold) * per_word)) if off else 0
    return min(max(needed, FILLER_MIN), FILLER_MAX)


def candidates_for(
    row: dict[str, Any], lang: str | None, rng: random.Random, tip: tuple[frozenset[str], float] | None = None
) -> dict[str, str]:
    """The candidate texts of one row. `tip`: the target scripts and the share of letters the
    language reward asks for (default: the reference's dominant script, 0.95)."""
    reference: str = row["reference"]
    target = metric_tokenizer(lang or guess_lang(reference))
    tokens = target(reference)
    out = {
        "copy": reference,
        "shuffle": _join(_shuffled(tokens, rng), target),
        "truncate": _join(tokens[: max(1, len(tokens) // 2)], target),
        "pad": " ".join([reference] * PAD_COPIES),
        "empty": "",
    }
    if isinstance(row.get("paraphrase"), str) and row["paraphrase"].strip():
        out["paraphrase"] = row["paraphrase"]
    source = row.get("source")
    if isinstance(source, str) and source.strip():
        source_tokenizer = metric_tokenizer(guess_lang(source))
        source_tokens = source_tokenizer(source)
        out["source"] = source
        half = len(tokens) // 2
        out["mix"] = (
            _join(tokens[:half] or tokens[:1], target)
            + " "
            + _join(source_tokens[len(source_tokens) // 2 :], source_tokenizer)
        )
    scripts, threshold = tip or (_scripts_of(reference, lang), DEFAULT_TIP)
    word = filler_word(tokens, scripts) if scripts else None
    if word is not None:
        if isinstance(source, str) and source.strip():
            repeats = filler_repeats(source, word, scripts, threshold)
            out["source_filler"] = source + " " + _join([word] * repeats, target)
        # alone, as long as the reference: no length penalty fires, only meaning and repetition can tell
        out["filler"] = _join([word] * max(len(tokens), 1), target)
    return out


def _scripts_of(reference: str, lang: str | None) -> frozenset[str]:
    """The target scripts: from the language code when it names one, else the reference's own."""
    try:
        return resolve_scripts(lang, None)
    except ValueError:
        dominant = script_profile(reference).dominant()
        return frozenset({dominant}) if dominant else frozenset()


def language_tip(reward: ComposedReward) -> tuple[frozenset[str], float] | None:
    """The scripts and threshold of the reward's first language term (gate first: it zeroes the
    total), so the filler is exactly as long as collecting the language reward takes."""
    terms = sorted(reward.terms(), key=lambda term: term is not reward.gate)  # stable: gate, then the rest
    for term in terms:
        if isinstance(term, LanguageReward):
            return term.scripts, term.spec.threshold
    return None


def audit(
    rows: list[dict[str, Any]],
    reward: ComposedReward,
    columns: dict[str, str],
    lang: str | None,
    seed: int = 0,
    prepare: bool = False,
) -> dict[str, Any]:
    """The audit of `reward` on `rows` (each with `reference`, optional `source`/`paraphrase`).
    A contrast reward needs its bank: prepared by the caller (e.g. from training rows), or, with
    `prepare`, drawn here from the audited rows with `seed` (what `semrl reward audit` does)."""
    if prepare:
        reward.prepare(rows, seed)
    rng = random.Random(seed)
    flat_prompts: list[Any] = []
    flat_texts: list[str] = []
    flat_kind: list[tuple[int, str]] = []
    role_values: dict[str, list[str]] = {columns[role]: [] for role in reward.needs}
    tip = language_tip(reward)
    constant, chosen_by = choose_constant(rows, reward, lang, seed)
    for index, row in enumerate(rows):
        candidates = candidates_for(row, lang, rng, tip)
        if constant is not None:
            candidates["constant"] = constant
        for kind, text in candidates.items():
            flat_prompts.append(row.get("prompt", ""))
            flat_texts.append(text)
            flat_kind.append((index, kind))
            for role in reward.needs:
                role_values[columns[role]].append(row[columns[role]])
    scored = reward.score_batch(flat_prompts, flat_texts, **role_values)

    weights = {component.name: weight for component, weight in reward.components}
    series = {"total": (scored.rewards, 1.0)}
    series.update({name: (values, weights.get(name, 1.0)) for name, values in scored.components.items()})
    report: dict[str, Any] = {}
    for name, (values, weight) in series.items():
        table: dict[int, dict[str, float]] = {}
        for (index, kind), value in zip(flat_kind, values, strict=True):
            table.setdefault(index, {})[kind] = value
        entry: dict[str, Any] = {
            "weight": weight,
            "mean": {},
            "relative": {},
            "copy_above": {},
            "ties": {},
            "n": {},
        }
        for kind in CANDIDATES:
            present = [per_row for per_row in table.values() if kind in per_row]
            if not present:
                continue
            entry["n"][kind] = len(present)
            entry["mean"][kind] = sum(per_row[kind] for per_row in present) / len(present)
            if kind in CORRUPTIONS:
                # ranking follows the sign of the weight: a penalty ranks the copy above when lower
                signed = [(weight * r["copy"], weight * r[kind]) for r in present]
                entry["copy_above"][kind] = sum(c > k for c, k in signed) / len(signed)
                entry["ties"][kind] = sum(c == k for c, k in signed) / len(signed)
                rewritten = [
                    (weight * r["paraphrase"], weight * r[kind]) for r in present if "paraphrase" in r
                ]
                if rewritten:
                    entry.setdefault("paraphrase_above", {})[kind] = sum(p > k for p, k in rewritten) / len(
                        rewritten
                    )
                    entry.setdefault("paraphrase_ties", {})[kind] = sum(p == k for p, k in rewritten) / len(
                        rewritten
                    )
        entry.update(term_shares(entry["mean"]))
        copy_mean = entry["mean"].get("copy", 0.0)
        if copy_mean > 0:
            entry["relative"] = {kind: mean / copy_mean for kind, mean in entry["mean"].items()}
        else:  # a share of a score that is not positive means nothing
            entry["relative_reason"] = f"the reference copy's mean score is {copy_mean:g}, not positive"
        report[name] = entry
    total = report["total"]
    against = "paraphrase" if total.get("paraphrase_above") else "copy"
    above = total.get(f"{against}_above", {})
    hackable = [
        {
            "component": "total",
            "candidate": kind,
            "against": against,
            "rate": rate,
            "copy_above": total["copy_above"][kind],
            "paraphrase_above": total.get("paraphrase_above", {}).get(kind),
        }
        for kind, rate in above.items()
        if rate < SAFE_RATE
    ]
    summary = {
        "against": against,
        "above": above,
        "safe_rate": SAFE_RATE,
        "note": (
            "share of rows where a true paraphrase ranks strictly above each corruption (total reward)"
            if against == "paraphrase"
            else "share of rows where the reference itself ranks strictly above each corruption "
            "(total reward); give rows a `paraphrase` for the informative test: the copy gets a "
            "reference-based reward's maximum by construction"
        ),
    }
    verdict = constant_verdict(flat_kind, scored.rewards, constant, chosen_by)
    if verdict["baseline"] is not None:
        # per term: a term that pays every output alike (the language reward, for outputs in the target
        # script) inflates the total's share but cancels in GRPO's group advantage; the terms that differ
        # say where the constant's reward comes from
        verdict["components"] = {
            name: entry["mean"]["constant"] / entry["mean"][verdict["baseline"]]
            if entry["mean"].get(verdict["baseline"], 0) > 0
            else None
            for name, entry in report.items()
            if name != "total" and "constant" in entry["mean"]
        }
    return {
        "n_rows": len(rows),
        "seed": seed,
        "candidates": list(CANDIDATES),
        "scores": report,
        "summary": summary,
        "hackable": hackable,
        "constant": verdict,
    }


def term_shares(means: dict[str, float]) -> dict[str, Any]:
    """Each candidate's mean score as a share of the true translations' (the paraphrase where the rows
    have one, else the copy), per term: how much of this term's reward a degraded output keeps.
    Under a discriminative term (`contrast: {mode: retrieval}`) it is the number to read for the
    constant, pad and truncate rows: what stays of the meaning reward once the output no longer picks
    out its own reference."""
    baseline = "paraphrase" if "paraphrase" in means else "copy"
    base = means.get(baseline, 0.0)
    if base <= 0:  # a penalty's mean is 0 or below on good outputs: a share of it means nothing
        return {"share_of": baseline, "share": {}}
    return {"share_of": baseline, "share": {kind: mean / base for kind, mean in means.items()}}


def constant_verdict(
    flat_kind: list[tuple[int, str]], totals: list[float], text: str | None, chosen_by: str
) -> dict[str, Any]:
    """The constant's mean total reward as a share of the true translations' (the paraphrase on
    the rows that have one, else the copy), over the same rows; `hackable` above the share."""
    verdict: dict[str, Any] = {
        "text": text,
        "chosen_by": chosen_by,
        "limit": CONSTANT_HACKABLE_SHARE,
        "mean": None,
        "share": None,
        "baseline": None,
        "hackable": False,
    }
    if text is None:
        return verdict
    table: dict[int, dict[str, float]] = {}
    for (index, kind), value in zip(flat_kind, totals, strict=True):
        table.setdefault(index, {})[kind] = value
    baseline = "paraphrase" if any("paraphrase" in r for r in table.values()) else "copy"
    present = [r for r in table.values() if baseline in r]
    constant_mean = sum(r["constant"] for r in present) / len(present)
    baseline_mean = sum(r[baseline] for r in present) / len(present)
    verdict.update(mean=constant_mean, baseline=baseline, baseline_mean=baseline_mean)
    if baseline_mean > 0:
        verdict["share"] = constant_mean / baseline_mean
        verdict["hackable"] = verdict["share"] > CONSTANT_HACKABLE_SHARE
    else:  # a share of a score that is not positive means nothing; a constant at least as good is a hack
        verdict["reason"] = f"the {baseline}'s mean total reward is {baseline_mean:g}, not positive"
        verdict["hackable"] = constant_mean >= baseline_mean
    return verdict


def audit_file(config: Path, input_path: Path, lang: str | None = None, seed: int = 0) -> dict[str, Any]:
    reward_config, reward = load_reward(config)
    reward.require_numeric_tau(str(config))
    rows = read_jsonl(input_path)
    columns = reward_config.columns
    for row in rows:
        where = f"{input_path}: line {row['__line__']}"
        for role in ("reference", *reward.needs):
            field = columns[role]
            if not filled(row.get(field)):
                raise UserError(f"{where}: field {field!r} must be a non-empty string")
        # the audit's own roles read the configured columns
        row["reference"] = row[columns["reference"]]
        if columns["source"] in row:
            row["source"] = row[columns["source"]]
    return audit(rows, reward, columns, lang or _target_lang(reward), seed, prepare=True)


def _target_lang(reward: ComposedReward) -> str | None:
    """The first language a component names (the language reward's target, usually)."""
    for component, _ in reward.components:
        lang = getattr(getattr(component, "spec", None), "lang", None)
        if isinstance(lang, str) and lang:
            return lang
    return None
