"""`semrl tour`: the metrics and the reward library, offline, on samples the project wrote.

A few seconds' walk through the two foundations every later stage stands on, on real scripts:
1. language-aware metrics on Tibetan->Chinese and Chinese->Tibetan sample outputs;
2. the reward library: scoring GRPO-like rows, and an audit that shows which corruptions a
   semantic-only reward lets through and how the paper's guarded reward closes them.
Every step is also a command; the demo prints them so a user can rerun each by hand.
"""

from __future__ import annotations

import random
import shutil
from importlib import resources
from pathlib import Path

from rich.console import Console
from rich.table import Table

from semrl.files import atomic_write_json, atomic_write_jsonl, check_output_folder, read_jsonl
from semrl.metrics.scoring import score_files
from semrl.rewards.audit import audit_file
from semrl.rewards.rows import score_file
from semrl.terminal_tables import score_table

console = Console()
SAMPLES = (
    "bo.txt",
    "zh.txt",
    "zh.hyp.txt",
    "bo.hyp.txt",
    "en.txt",
    "en.paraphrase.txt",
    "reward-semantic-only.yaml",
    "reward-guarded.yaml",
    "reward-bo-surface.yaml",
)


def copy_samples(data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    root = resources.files("semrl") / "assets" / "samples"
    for name in SAMPLES:
        with resources.as_file(root / name) as source:
            shutil.copyfile(source, data_dir / name)


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def build_policy_rows(data: Path, seed: int = 0) -> list[dict]:
    """A GRPO-like batch: per prompt, 4 completions a policy might produce (faithful, paraphrase,
    code-mixed with the Tibetan source, verbose repetition)."""
    rng = random.Random(seed)
    sources, refs, paraphrases = (
        _lines(data / "bo.txt"),
        _lines(data / "en.txt"),
        _lines(data / "en.paraphrase.txt"),
    )
    rows = []
    for source, ref, para in zip(sources, refs, paraphrases, strict=True):
        words = ref.split()
        mixed = " ".join(words[: len(words) // 2]) + " " + source
        for kind, completion in (
            ("faithful", ref),
            ("paraphrase", para),
            ("code-mixed", mixed),
            ("verbose", " ".join([para] * 5)),
        ):
            rows.append(
                {
                    "prompt": f"Translate from Tibetan to English: {source}",
                    "completion": completion,
                    "reference": ref,
                    "source": source,
                    "kind": kind,
                }
            )
    rng.shuffle(rows)
    return rows


def run_tour(out: Path) -> dict:
    check_output_folder(out, "--out")
    data = out / "data"
    copy_samples(data)
    console.rule("[bold]semrl tour: metrics and rewards, offline")
    console.print(
        "The metrics and the reward library on project-written Tibetan, Chinese and English "
        "(`semrl demo` runs the whole experiment in the sandbox).\n"
    )

    console.rule("1. Tibetan -> Chinese outputs, scored (Chinese: sacrebleu tokenizer zh, characters)")
    zh = score_files(data / "zh.hyp.txt", data / "zh.txt", None, "zh", ["bleu", "chrf", "rougeL", "lang"])
    score_table(zh)
    console.print(
        f"  $ semrl score --hyp {data}/zh.hyp.txt --ref {data}/zh.txt --lang zh --metrics "
        "bleu,chrf,rougeL,lang\n"
    )

    console.rule("2. Chinese -> Tibetan outputs, scored (Tibetan: syllables)")
    bo = score_files(data / "bo.hyp.txt", data / "bo.txt", None, "bo", ["bleu", "chrf", "rougeL", "lang"])
    score_table(bo)
    console.print("  One output mixes Chinese into Tibetan; the language check catches it.\n")

    console.rule("3. Rewarding a GRPO-like batch (Tibetan -> English, paper reward + guards)")
    rows_path = data / "policy_rows.jsonl"
    atomic_write_jsonl(rows_path, build_policy_rows(data))
    summary = score_file(data / "reward-guarded.yaml", rows_path, out / "scored.jsonl")
    by_kind: dict[str, list[float]] = {}
    for row in read_jsonl(out / "scored.jsonl", numbered=False, allow_empty=True):
        by_kind.setdefault(row["kind"], []).append(row["reward"])
    table = Table(title="mean reward by kind of completion")
    table.add_column("completion")
    table.add_column("reward", justify="right")
    for kind, values in by_kind.items():
        table.add_row(kind, f"{sum(values) / len(values):.3f}")
    console.print(table)
    console.print(
        f"  $ semrl reward --config {data}/reward-guarded.yaml --input {rows_path} --output "
        f"{out}/scored.jsonl\n"
    )

    console.rule("4. Audit: can the reward be hacked?")
    pairs = data / "pairs.jsonl"
    atomic_write_jsonl(
        pairs,
        [
            {"reference": r, "source": s, "paraphrase": p}
            for r, s, p in zip(
                _lines(data / "en.txt"),
                _lines(data / "bo.txt"),
                _lines(data / "en.paraphrase.txt"),
                strict=True,
            )
        ],
    )
    plain = audit_file(data / "reward-semantic-only.yaml", pairs, "en")
    guarded = audit_file(data / "reward-guarded.yaml", pairs, "en")
    table = Table(title="share of the true reference's reward that each corruption keeps (total reward)")
    table.add_column("candidate")
    table.add_column("semantic only", justify="right")
    table.add_column("guarded (paper + sibling)", justify="right")
    table.add_column("reference ranked above (guarded)", justify="right")
    plain_total, guarded_total = plain["scores"]["total"], guarded["scores"]["total"]
    for kind in ("paraphrase", *plain_total["copy_above"]):
        above = guarded_total["copy_above"].get(kind)
        table.add_row(
            kind,
            f"{plain_total['relative'][kind]:.0%}",
            f"{guarded_total['relative'][kind]:.0%}",
            "" if above is None else f"{above:.0%}",
        )
    console.print(table)
    console.print(
        f"  $ semrl reward audit --config {data}/reward-semantic-only.yaml --input {pairs} --lang en\n"
    )
    lenient = [
        k for k, v in guarded_total["relative"].items() if k not in ("copy", "paraphrase") and v >= 0.75
    ]
    console.print(
        "Read: the language gate zeroes source copies and code-mixed outputs. Corruptions that still "
        "keep at least 75% of the reference's reward under the guarded reward: "
        f"{', '.join(lenient) or 'none'}. "
        "A sentence encoder is close to a bag of words, so word-order shuffles stay high; with the "
        "published weight (-0.2) the length penalty trims padding only a little."
    )

    result = {
        "score_zh": zh,
        "score_bo": bo,
        "reward": summary,
        "audit": {"semantic_only": plain, "guarded": guarded},
    }
    atomic_write_json(out / "demo.json", result)
    console.print(f"\nAll numbers: {out / 'demo.json'}")
    return result
