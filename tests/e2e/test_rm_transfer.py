"""Reward models across languages: the transfer matrix, representation shift, RM as reward/judge,
best-of-n, and preference-file validation, through the real CLI on tiny models the project builds."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli, write_jsonl
from semrl.run_folder import Run

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "configs" / "examples" / "tiny-rm-transfer.yaml"
PAIRS = ROOT / "configs" / "examples" / "data" / "tiny-prefs.jsonl"


@pytest.fixture(scope="module")
def transfer_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rm_transfer") / "run"
    result = run_cli("rm", "transfer", "--config", str(EXAMPLE), "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


def test_top_singular_share_bounds():
    from semrl.studies.rm.representation import top_singular_share

    rank_one = np.outer(np.arange(1, 6), np.array([2.0, -1.0, 0.5]))
    assert top_singular_share(rank_one) == pytest.approx(1.0)
    assert top_singular_share(np.eye(4)) == pytest.approx(0.25)
    random = np.random.default_rng(0).normal(size=(20, 8))
    assert 0.0 < top_singular_share(random) < 1.0
    with pytest.raises(ValueError):
        top_singular_share(np.zeros((3, 3)))


def test_matrix_and_reference_comparison_by_hand():
    from semrl.studies.rm.matrix import correct, reference_vs_native, transfer_matrix

    assert correct([1.0, 0.0, 2.0], [0.5, 0.0, 3.0]) == [1.0, 0.0, 0.0]  # ties count as wrong
    hits = {"en": {"en": [1, 1, 1, 1], "bo": [1, 1, 0, 0]}, "bo": {"en": [1, 0, 0, 0], "bo": [1, 1, 1, 0]}}
    cats = {"en": ["a", "a", "b", "b"], "bo": ["a", "b", "a", "b"]}
    matrix = transfer_matrix(hits, cats, 200, 0)
    assert matrix["en"]["bo"]["accuracy"] == 0.5
    assert matrix["en"]["bo"]["categories"] == {
        "a": {"accuracy": 0.5, "ci95": pytest.approx([0.0, 1.0]), "n": 2},
        "b": {"accuracy": 0.5, "ci95": pytest.approx([0.0, 1.0]), "n": 2},
    }
    comparison = reference_vs_native(hits, "en", 200, 0)
    assert comparison["languages"]["bo"]["difference"] == pytest.approx(0.5 - 0.75)
    assert comparison["mean_difference"] == pytest.approx(-0.25)


def test_example_writes_matrix_representation_and_report(transfer_run):
    result = json.loads((transfer_run / "rm_transfer.json").read_text(encoding="utf-8"))
    langs = result["languages"]
    assert langs["train"] == ["en", "bo"] and langs["eval"] == ["en", "bo"]
    matrix = result["matrix"]
    assert list(matrix) == ["en", "bo"] and all(list(row) == ["en", "bo"] for row in matrix.values())
    for row in matrix.values():
        for cell in row.values():
            assert 0.0 <= cell["accuracy"] <= 1.0
            assert cell["ci95"][0] <= cell["accuracy"] <= cell["ci95"][1]
            assert set(cell["categories"]) == {"Chat", "Reasoning", "Safety"}
            assert sum(c["n"] for c in cell["categories"].values()) == cell["n"]
    # the easy toy set: each RM on its own language
    assert matrix["en"]["en"]["accuracy"] > 0.9 and matrix["bo"]["bo"]["accuracy"] > 0.9
    comparison = result["reference_vs_native"]["languages"]["bo"]
    assert comparison["difference"] == pytest.approx(
        matrix["en"]["bo"]["accuracy"] - matrix["bo"]["bo"]["accuracy"]
    )
    rep = result["representation"]
    assert set(rep["models"]) == {"base", "rm-en", "rm-bo"}
    for per_language in rep["models"].values():
        for entry in per_language.values():
            assert 0.0 < entry["f"] <= 1.0 and entry["n"] == len(entry["norms"]) > 1
    assert rep["shift"]["rm-en"]["bo"]["delta_f"] == pytest.approx(
        rep["models"]["rm-en"]["bo"]["f"] - rep["models"]["base"]["bo"]["f"]
    )
    for figure in result["figures"]:
        assert (transfer_run / figure).stat().st_size > 1000
    scores = (transfer_run / "scores.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(scores) == 2 * sum(result["pairs"][lang]["eval"] for lang in langs["eval"])
    summary = (transfer_run / "summary.md").read_text(encoding="utf-8")
    assert "Pair accuracy" in summary and "σ₁" in summary
    assert "<img" in (transfer_run / "report.html").read_text(encoding="utf-8")


def test_rerun_reuses_trained_models_and_agrees(transfer_run):
    before = json.loads((transfer_run / "rm_transfer.json").read_text(encoding="utf-8"))
    result = run_cli("rm", "transfer", "--config", str(EXAMPLE), "--out", str(transfer_run))
    assert result.returncode == 0, result.stderr
    assert "rm (en)" not in result.stdout  # no training the second time
    after = json.loads((transfer_run / "rm_transfer.json").read_text(encoding="utf-8"))
    assert after["matrix"] == before["matrix"]


def test_best_of_n_picks_the_rm_favourite(transfer_run, tmp_path):
    from semrl.models.loading import load_scorer, score_texts

    rm = transfer_run / "rm-en" / "final"
    pairs = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines()][
        :40:2
    ]  # English rows
    rows = [
        {"id": i, "prompt": p["prompt"], "candidates": [p["rejected"], p["chosen"]]}
        for i, p in enumerate(pairs)
    ]
    candidates = write_jsonl(tmp_path / "candidates.jsonl", rows)
    out = tmp_path / "best.jsonl"
    result = run_cli(
        "rm", "best-of-n", "--model", str(rm), "--candidates", str(candidates), "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    chosen = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    model, tokenizer = load_scorer(str(rm), "cpu")
    for row, pick in zip(rows, chosen, strict=True):
        scores = score_texts(model, tokenizer, [row["prompt"] + c for c in row["candidates"]])
        assert pick["best_index"] == int(np.argmax(scores))
        assert pick["scores"] == pytest.approx(scores, abs=1e-4)
    assert sum(pick["best_index"] == 1 for pick in chosen) / len(chosen) > 0.9
    distinct = pairs[::3][:3]  # three different prompts (rows are grouped by prompt)
    flat = write_jsonl(
        tmp_path / "flat.jsonl",
        [{"prompt": p["prompt"], "completion": c} for p in distinct for c in (p["rejected"], p["chosen"])],
    )
    result = run_cli("rm", "best-of-n", "--model", str(rm), "--candidates", str(flat), "--json")
    assert result.returncode == 0, result.stderr
    assert [r["best"] for r in json.loads(result.stdout)] == [p["chosen"] for p in distinct]


def test_rm_reward_reference_normalisation_and_judge(transfer_run, tmp_path):
    from semrl.evaluate.preference import build_judge, compare
    from semrl.experiment_config import JudgeSpec
    from semrl.rewards import RewardConfig, build_reward

    rm = str(transfer_run / "rm-bo" / "final")
    pairs = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines() if '"bo"' in line]
    reference = write_jsonl(
        tmp_path / "reference.jsonl", [{"prompt": p["prompt"], "completion": p["chosen"]} for p in pairs]
    )
    reward = build_reward(
        RewardConfig.model_validate(
            {
                "rewards": [
                    {
                        "type": "reward_model",
                        "model": rm,
                        "transform": "reference_z",
                        "reference": str(reference),
                    }
                ]
            }
        )
    )
    prompts, chosen = [p["prompt"] for p in pairs], [p["chosen"] for p in pairs]
    values = reward(prompts=prompts, completions=chosen)
    assert abs(float(np.mean(values))) < 1e-4 and float(np.std(values)) == pytest.approx(1.0, abs=1e-4)
    worse = reward(prompts=prompts, completions=[p["rejected"] for p in pairs])
    assert np.mean(worse) < np.mean(values)
    verdict = build_judge(JudgeSpec(type="reward_model", model=rm), "cpu")
    result = compare(prompts, chosen, [p["rejected"] for p in pairs], [{}] * len(pairs), verdict)
    assert result["wins"] > 0.9 * result["n"]


def test_grpo_stage_with_rm_reward_logs_it(transfer_run, tmp_path):
    """A GRPO arm whose reward is the trained RM (combined with a language reward) trains and logs it."""
    base = transfer_run / "base_model"
    rm = transfer_run / "rm-bo" / "final"
    pairs = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines() if '"bo"' in line]
    data = write_jsonl(
        tmp_path / "prompts.jsonl", [{"prompt": p["prompt"], "reference": p["chosen"]} for p in pairs]
    )
    config = tmp_path / "grpo.yaml"
    config.write_text(
        f"name: rm-reward\nmodel: {{path: {base}}}\ntask: {{type: generic}}\ndata: {{train: {data}, "
        f"test_size: 4}}\n"
        "rewards:\n  rewards:\n"
        f"    - {{type: reward_model, model: {rm}, transform: batch_z, weight: 1.0}}\n"
        "    - {type: language, lang: bo, weight: 0.5}\n"
        "grpo: {max_steps: 2, learning_rate: 1.0e-4, num_generations: 4, prompts_per_step: 2, "
        "max_completion_length: 8, logging_steps: 1}\n"
        "eval: {enabled: false}\n"
        "arms: [{name: rl, recipe: grpo}]\n",
        encoding="utf-8",
    )
    result = run_cli("run", str(config), "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    history = json.loads(
        (Run(tmp_path / "run").arm_stage("rl", "grpo") / "log_history.json").read_text(encoding="utf-8")
    )
    logged = [entry for entry in history if "reward/reward_model" in entry]
    assert len(logged) == 2 and all(math.isfinite(e["reward/reward_model"]) for e in logged)


def test_translate_pairs_with_a_function_and_a_model(tiny_lm):
    from semrl.data.preferences import load_preferences, translate_pairs
    from semrl.studies.rm.translator import model_translator

    pairs = load_preferences(str(PAIRS))[:4]
    words = {"the": "ཀ", "is": "ཁ"}
    translated = translate_pairs(
        pairs, lambda texts: [" ".join(words.get(w, w) for w in t.split(" ")) for t in texts], "xx"
    )
    assert [p["language"] for p in translated] == ["xx"] * 4 and translated[0]["translated_from"] == pairs[0][
        "language"
    ]
    assert (
        translated[0]["chosen"] == "The house ཁ big and I like it."
        and translated[0]["category"] == pairs[0]["category"]
    )
    collapsing = translate_pairs(
        pairs, lambda texts: ["same" if i % 3 else "prompt" for i, _ in enumerate(texts)], "zz"
    )
    assert collapsing == []  # chosen == rejected after translation: nothing left to prefer
    translator = model_translator(str(tiny_lm), "Translate: {text}\n", max_new_tokens=4, device="cpu")
    outputs = translator(["ཁང་པ་ཆེན་པོ་རེད།", "", "The house is big."])
    assert len(outputs) == 3 and outputs[1] == "" and all(isinstance(o, str) for o in outputs)


BAD_PAIRS = {
    "missing_chosen": (
        '{"prompt": "p", "rejected": "r", "language": "en"}\n',
        "line 1: missing field 'chosen'",
    ),
    "number_rejected": (
        '{"prompt": "p", "chosen": "c", "rejected": 3, "language": "en"}\n',
        "line 1: field 'rejected' must be text, got int",
    ),
    "empty_chosen": (
        '{"prompt": "p", "chosen": "c", "rejected": "r", "language": "en"}\n'
        '{"prompt": "p", "chosen": "  ", "rejected": "r", "language": "en"}\n',
        "line 2: field 'chosen' is empty",
    ),
    "identical": (
        '{"prompt": "p", "chosen": "same", "rejected": "same", "language": "en"}\n',
        "line 1: fields 'chosen' and 'rejected' are identical",
    ),
    "no_language": ('{"prompt": "p", "chosen": "c", "rejected": "r"}\n', "line 1: missing field 'language'"),
    "broken_json": (
        '{"prompt": "p", "chosen": "c", "rejected": "r", "language": "en"}\n{"prompt": \n',
        "line 2",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_PAIRS))
def test_bad_preference_files_exit_2_naming_file_line_field(case, tmp_path):
    text, expected = BAD_PAIRS[case]
    data = tmp_path / f"{case}.jsonl"
    data.write_text(text, encoding="utf-8")
    config = tmp_path / "rm.yaml"
    config.write_text(f"model: {{tiny: {{}}}}\ndata: {{files: [{{path: {data}}}]}}\n", encoding="utf-8")
    result = run_cli("rm", "transfer", "--config", str(config), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert str(data) in result.stderr and expected in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_bad_transfer_settings_exit_2(tmp_path):
    config = tmp_path / "rm.yaml"
    config.write_text(
        f"model: {{tiny: {{}}}}\ndata: {{files: [{{path: {PAIRS}}}]}}\neval_languages: [en, fr]\n",
        encoding="utf-8",
    )
    result = run_cli("rm", "transfer", "--config", str(config), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "eval_languages: no evaluation pairs for fr" in result.stderr
    config.write_text(
        f"model: {{tiny: {{}}}}\ndata: {{files: [{{path: {PAIRS}}}]}}\nreward_models: {{en: /no/rm}}\n"
        "rm: {epochs: 1, colour: red}\n",
        encoding="utf-8",
    )
    result = run_cli("rm", "transfer", "--config", str(config), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "rm.colour: unknown key" in result.stderr
    bad = write_jsonl(tmp_path / "cands.jsonl", [{"prompt": "p", "candidates": []}])
    result = run_cli("rm", "best-of-n", "--model", str(tmp_path), "--candidates", str(bad))
    assert result.returncode == 2 and "line 1: field 'candidates' must be a non-empty list" in result.stderr
    for rows, message in (
        (
            [{"prompt": "p", "candidates": ["a good answer", " \u200b "]}],
            "line 1: field 'candidates': item 2 is empty",
        ),
        (
            [{"prompt": "p", "completion": "fine"}, {"prompt": "p", "completion": ""}],
            "line 2: field 'completion' is empty",
        ),
    ):
        bad = write_jsonl(tmp_path / "cands.jsonl", rows)
        result = run_cli("rm", "best-of-n", "--model", str(tmp_path), "--candidates", str(bad))
        assert result.returncode == 2 and message in result.stderr, result.stderr
