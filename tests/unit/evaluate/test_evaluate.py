"""Evaluation numbers checked by hand, and bad suite files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import run_cli, write_jsonl
from semrl.evaluate.benchmarks import alignment_tax, run_benchmark
from semrl.evaluate.likelihood import continuation_logprobs, multiple_choice, token_kl, token_nll
from semrl.evaluate.preference import compare
from semrl.evaluate.qa import exact_match, f1_score
from semrl.evaluate.stats import bootstrap_mean
from semrl.evaluate.suite import BenchmarkSpec

ROOT = Path(__file__).resolve().parents[3]
TEXTS = ["The weather was cold this morning.", "我们明天早上一起去公园散步。", "ཉི་མ་ཤར་སོང་།"]


@pytest.fixture(scope="module")
def lm(tiny_lm):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_lm).eval(), AutoTokenizer.from_pretrained(tiny_lm)


def test_exact_match_and_f1_by_hand():
    assert exact_match("The blue shed.", ["blue shed"], "en") == 1.0  # article, case, punctuation dropped
    assert f1_score("in the blue shed", ["the blue shed behind the house"], "en") == pytest.approx(
        2 * (2 / 3) * (2 / 4) / (2 / 3 + 2 / 4)
    )
    assert f1_score("nothing", ["blue shed"], "en") == 0.0
    # Chinese by characters, punctuation ignored: "骑车" vs "骑自行车" shares 骑, 车
    assert f1_score("骑车。", ["骑自行车"], "zh") == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert exact_match("清水河！", ["清水河"], "zh") == 1.0
    assert f1_score("三棵", ["3棵", "三棵"], "zh") == 1.0  # best over gold answers
    assert exact_match("", [""], "zh") == 1.0 and f1_score("", ["蓝色"], "zh") == 0.0


def _logprob_by_hand(model, tokenizer, context, continuation):
    ctx = tokenizer(context, add_special_tokens=False)["input_ids"]
    cont = tokenizer(continuation, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([ctx + cont])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(ids).logits[0], dim=-1)
    return sum(float(logprobs[len(ctx) + i - 1, token]) for i, token in enumerate(cont))


def test_multiple_choice_matches_a_hand_computation(lm):
    model, tokenizer = lm
    item = {
        "question": "Which of these is a fruit?",
        "choices": ["apple", "hammer", "a very long river bank"],
        "answer": 0,
    }
    context = "Question: Which of these is a fruit?\nAnswer:"
    by_hand = [_logprob_by_hand(model, tokenizer, context, " " + c) for c in item["choices"]]
    batched = continuation_logprobs(
        model, tokenizer, [(context, " " + c) for c in item["choices"]], batch_size=2
    )
    assert [s for s, _ in batched] == pytest.approx(by_hand, abs=1e-4)  # padding does not change the numbers
    expected = float(int(np.argmax(by_hand)) == 0)
    assert multiple_choice(model, tokenizer, [item]) == [expected]
    flipped = {**item, "answer": int(np.argmax(by_hand))}
    assert multiple_choice(model, tokenizer, [flipped]) == [1.0]


def test_shared_context_scoring_equals_one_sequence_at_a_time(lm):
    from semrl.evaluate.likelihood import shared_context_logprobs

    model, tokenizer = lm
    contexts = [
        "Q: short?\nA:",
        "Question: a much longer context with many more words in it?\nAnswer:",
        "ཀ་ཁ",
    ]
    choices = [["yes", "no"], ["a river", "the old bridge over the water", "x"], ["中文", "ག"]]
    shared = shared_context_logprobs(model, tokenizer, contexts, choices, batch_size=2)
    for context, item_choices, scores in zip(contexts, choices, shared, strict=True):
        for choice, (score, _) in zip(item_choices, scores, strict=True):
            assert score == pytest.approx(_logprob_by_hand(model, tokenizer, context, " " + choice), abs=1e-4)


def test_kl_and_nll_shift_of_a_model_to_itself_are_zero(lm):
    model, tokenizer = lm
    kls = token_kl(model, model, tokenizer, TEXTS, batch_size=2)
    assert all(float(np.abs(k).max()) < 1e-6 for k in kls)
    spec = BenchmarkSpec(name="text", type="nll", file="x.txt")
    items = [{"text": t} for t in TEXTS]
    result = run_benchmark(spec, items, model, tokenizer)
    tax = alignment_tax({"text": result}, {"text": result})
    assert tax["text"]["nll_mean"]["tax"] == 0.0 and tax["text"]["nll_p90"]["tax"] == 0.0
    nll = token_nll(model, tokenizer, TEXTS[:1])[0]
    ids = [tokenizer.bos_token_id] + tokenizer(TEXTS[0], add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0], dim=-1)
    by_hand = [-float(logprobs[i, ids[i + 1]]) for i in range(len(ids) - 1)]
    assert nll.tolist() == pytest.approx(by_hand, abs=1e-4)


def test_alignment_tax_sign_and_interval():
    base = {"qa": {"items": {"f1": [100.0, 100.0, 50.0, 0.0]}}}
    tuned = {"qa": {"items": {"f1": [100.0, 0.0, 50.0, 0.0]}}}
    tax = alignment_tax(base, tuned)
    assert tax["qa"]["f1"]["tax"] == pytest.approx(25.0)  # lost 25 points: positive
    assert tax["qa"]["f1"]["relative"] == pytest.approx(25.0 / 62.5)
    low, high = tax["qa"]["f1"]["ci95"]
    assert low <= 25.0 <= high
    assert tax["overall"]["score"]["tax"] == pytest.approx(25.0)


def test_bootstrap_is_seeded_and_brackets_the_mean():
    values = list(np.random.default_rng(1).normal(size=200))
    low, high = bootstrap_mean(values, seed=3)
    assert low < float(np.mean(values)) < high
    assert bootstrap_mean(values, seed=3) == [low, high]


def test_preference_counts_both_orders():
    prompts, rows = ["p"] * 4, [{}] * 4
    a, b = ["good", "good", "bad", "same"], ["bad", "good", "good", "same"]
    quality = {"good": 1.0, "bad": 0.0, "same": 0.5}
    fair = lambda prompt, x, y, row: quality[x] - quality[y]  # noqa: E731
    result = compare(prompts, a, b, rows, fair)
    assert (result["wins"], result["ties"], result["losses"]) == (1, 2, 1)
    assert result["win_rate"] == pytest.approx(0.5)
    first_position = lambda prompt, x, y, row: 1.0  # noqa: E731  (always prefers whatever is shown first)
    biased = compare(prompts, a, b, rows, first_position)
    assert biased["ties"] == 4  # position bias cancels out
    assert biased["position_agreement"] == 0.0 and biased["first_shown_preferred"] == 1.0
    # the fair judge: the two decisive items agree in both orders, and it picks the first shown half the time
    assert result["position_agreement"] == pytest.approx(0.5) and result[
        "first_shown_preferred"
    ] == pytest.approx(0.5)
    assert result["unreadable"] == 0


def test_an_unreadable_judge_answer_is_a_counted_tie():
    answers = iter(["A", "I cannot decide", "B", "B"])  # item 1: A first -> A, then unreadable; item 2: B, B
    verdicts = {"A": 1.0, "B": -1.0}
    judge = lambda prompt, x, y, row: verdicts.get(next(answers), float("nan"))  # noqa: E731
    result = compare(["p", "p"], ["x", "x"], ["y", "y"], [{}, {}], judge)
    assert result["unreadable"] == 1 and result["ties"] == 2  # item 2: "B" twice, the second shown each time
    assert result["first_shown_preferred"] == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    "answer, choice",
    [
        ("A", "A"),
        ("**B**.", "B"),
        ("Response B is better.", "B"),
        ("A and B are both fine", None),
        ("", None),
        ("Apples", None),
    ],
)
def test_the_judge_reads_one_letter_or_nothing(answer, choice):
    from semrl.evaluate.preference import read_choice

    assert read_choice(answer) == choice


BAD_SUITES = {
    "unknown_key": (
        "benchmarks:\n  - {name: q, type: qa, file: qa.jsonl, langg: zh}\n",
        None,
        ["suite.yaml", "langg"],
    ),
    "unknown_type": (
        "benchmarks:\n  - {name: q, type: trivia, file: qa.jsonl}\n",
        None,
        ["suite.yaml", "type"],
    ),
    "missing_file": (
        "benchmarks:\n  - {name: q, type: qa, file: nope.jsonl}\n",
        None,
        ["nope.jsonl", "not found"],
    ),
    "qa_missing_question": (
        "benchmarks:\n  - {name: q, type: qa, file: qa.jsonl}\n",
        [{"context": "c", "answers": ["a"]}],
        ["qa.jsonl", "line 1", "'question'"],
    ),
    "qa_bad_answers": (
        "benchmarks:\n  - {name: q, type: qa, file: qa.jsonl}\n",
        [{"context": "c", "question": "q", "answers": []}],
        ["qa.jsonl", "line 1", "'answers'"],
    ),
    "mc_answer_out_of_range": (
        "benchmarks:\n  - {name: m, type: mc, file: qa.jsonl}\n",
        [
            {"question": "q", "choices": ["a", "b"], "answer": 0},
            {"question": "q", "choices": ["a", "b"], "answer": 5},
        ],
        ["qa.jsonl", "line 2", "'answer'"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_SUITES))
def test_bad_suite_exits_2(tmp_path, tiny_lm, case):
    suite_text, rows, fragments = BAD_SUITES[case]
    (tmp_path / "suite.yaml").write_text(suite_text, encoding="utf-8")
    if rows is not None:
        write_jsonl(tmp_path / "qa.jsonl", rows)
    config = tmp_path / "exp.yaml"
    config.write_text(
        f"name: e\nmodel: {{path: {tiny_lm}}}\ntask: {{type: translate, source_lang: bo, target_lang: zh}}\n"
        f"data: {{train: {ROOT / 'configs/examples/data/tiny-bo-zh.jsonl'}, test_size: 4}}\n",
        encoding="utf-8",
    )
    result = run_cli(
        "eval",
        "--model",
        str(tiny_lm),
        "--config",
        str(config),
        "--suite",
        str(tmp_path / "suite.yaml"),
        "--out",
        str(tmp_path / "eval"),
    )
    assert result.returncode == 2, result.stderr
    line = [x for x in result.stderr.splitlines() if x.strip()]
    assert len(line) == 1 and "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in line[0], line[0]
    assert not (tmp_path / "eval").exists()


def test_eval_a_model_path_from_the_cli(tmp_path, tiny_lm):
    config = tmp_path / "exp.yaml"
    config.write_text(
        f"name: e\nmodel: {{path: {tiny_lm}}}\ntask: {{type: translate, source_lang: bo, target_lang: zh}}\n"
        f"data: {{train: {ROOT / 'configs/examples/data/tiny-bo-zh.jsonl'}, test_size: 6}}\n"
        "eval: {resamples: 50}\n",
        encoding="utf-8",
    )
    result = run_cli(
        "eval",
        "--model",
        str(tiny_lm),
        "--config",
        str(config),
        "--name",
        "tiny",
        "--suite",
        str(ROOT / "configs/examples/general/suite.yaml"),
        "--out",
        str(tmp_path / "eval"),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads((tmp_path / "eval" / "tiny.json").read_text(encoding="utf-8"))
    assert out["n_test"] == 6 and set(out["task"]) == {"bleu", "chrf", "sim", "lang"}
    assert out["general"]["drift"]["kl_mean"]["value"] == pytest.approx(0.0, abs=1e-6)  # it is the base model
    assert len((tmp_path / "eval" / "tiny.outputs.jsonl").read_text(encoding="utf-8").splitlines()) == 6
