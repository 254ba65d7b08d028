"""The pipeline on each architecture users fine-tune: a tiny random Qwen3, Qwen2.5, Llama 3, Gemma 3
and Mistral (models/families.py: semrl's own BPE tokenizer, the family's special tokens and chat
template) through the real CLI: cold-start SFT -> GRPO with LoRA -> merged final/ -> evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import run_cli, sample_lines
from semrl.run_folder import Run

ROOT = Path(__file__).resolve().parents[2]
BO_ZH = ROOT / "configs" / "examples" / "data" / "tiny-bo-zh.jsonl"
FAST = {"qwen3", "gemma"}  # the two with the most quirks (think tags; no system role, tied, end_of_turn)
FAMILIES = [
    f if f in FAST else pytest.param(f, marks=pytest.mark.slow)
    for f in ("qwen3", "qwen2", "llama3", "gemma", "mistral")
]


def _config(tmp_path: Path, family: str) -> Path:
    config = {
        "name": f"arch-{family}",
        "seed": 0,
        "model": {
            "tiny": {
                "family": family,
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_layers": 1,
                "num_heads": 2,
                "vocab_size": 400,
            },
            "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
        },
        # a system message: Gemma has no system role (merged into the first user turn), Mistral
        # prepends it to the last user message
        "task": {
            "type": "translate",
            "source_lang": "bo",
            "target_lang": "zh",
            "chat_template": "always",
            "system": "You translate.",
        },
        "data": {"train": str(BO_ZH), "test_size": 4},
        "rewards": {"rewards": [{"type": "chrf", "weight": 1.0}, {"type": "language", "lang": "zh"}]},
        "sft": {"examples": 8, "max_steps": 4, "batch_size": 4, "learning_rate": 1.0e-3, "logging_steps": 1},
        "grpo": {
            "max_steps": 2,
            "learning_rate": 1.0e-4,
            "num_generations": 2,
            "prompts_per_step": 2,
            "max_completion_length": 8,
            "logging_steps": 1,
        },
        "eval": {"metrics": ["chrf", "lang"], "resamples": 20, "max_new_tokens": 8},
        "arms": [{"name": "rl", "recipe": "two_stage"}],
    }
    path = tmp_path / f"{family}.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize("family", FAMILIES)
def test_family_runs_end_to_end_with_lora(tmp_path, family):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run = tmp_path / "run"
    result = run_cli("run", str(_config(tmp_path, family)), "--out", str(run))
    assert result.returncode == 0, result.stderr[-4000:]
    assert (run / "results.json").exists()
    base = AutoModelForCausalLM.from_pretrained(run / "base_model")
    assert (
        base.config.model_type
        == {
            "qwen3": "qwen3",
            "qwen2": "qwen2",
            "llama3": "llama",
            "gemma": "gemma3_text",
            "mistral": "mistral",
        }[family]
    )
    for stage in ("sft", "grpo"):
        final = Run(run).arm_stage("rl", stage) / "final"
        assert not list(final.glob("adapter_*")), f"{stage}: LoRA adapter left unmerged"
        model = AutoModelForCausalLM.from_pretrained(final)
        assert type(model) is type(base)
        # tied embeddings stay tied through the LoRA merge (and untied ones untied)
        tied = (
            model.get_input_embeddings().weight.data_ptr() == model.get_output_embeddings().weight.data_ptr()
        )
        assert tied == bool(base.config.tie_word_embeddings)
        tokenizer = AutoTokenizer.from_pretrained(final)
        assert tokenizer.chat_template == AutoTokenizer.from_pretrained(run / "base_model").chat_template


# Regressions for architecture quirks, on tokenizers alone (seconds, no training).


@pytest.fixture(scope="module")
def tokenizers():
    from semrl.models.families import FAMILIES, family_tokenizer

    texts = sample_lines("bo.txt") + sample_lines("zh.txt") + sample_lines("en.txt")
    return {name: family_tokenizer(name, texts, 400) for name in FAMILIES}


def _task(chat_template: str = "always"):
    from semrl.experiment_config import TaskSpec

    return TaskSpec(
        type="translate",
        source_lang="bo",
        target_lang="zh",
        chat_template=chat_template,
        system="You translate.",
    )


def test_every_family_renders_prompt_as_prefix_of_prompt_plus_completion(tokenizers):
    """TRL's SFT masks the loss by rendering the prompt alone and prompt + completion; each family's
    template (with the task's system message) must render the first as a prefix of the second."""
    from semrl.data.tasks import build_task_examples

    row = {"source": "བོད་", "reference": "明天妈妈会喝茶。"}
    for name, tokenizer in tokenizers.items():
        record = build_task_examples(_task(), tokenizer).sft_record(row)
        prompt = tokenizer.apply_chat_template(record["prompt"], tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(record["prompt"] + record["completion"], tokenize=False)
        assert full.startswith(prompt), name
        assert "You translate." in prompt and row["reference"] in full[len(prompt) :], name
    gemma = tokenizers["gemma"].apply_chat_template(
        build_task_examples(_task(), tokenizers["gemma"]).prompt(row),
        tokenize=False,
        add_generation_prompt=True,
    )
    assert "system" not in gemma and gemma.startswith("<bos><start_of_turn>user\nYou translate.\n\n")


def test_qwen3_think_block_is_neither_rewarded_nor_evaluated(tokenizers):
    """Qwen3 opens its answer with `<think>\\n\\n</think>\\n\\n`; the tags are added tokens that are
    not special, so decoding keeps them. Rewards and evaluation score the answer after them."""
    from semrl.evaluate.generation import generate
    from semrl.rewards import build_reward
    from semrl.rewards.config import RewardConfig

    qwen3 = tokenizers["qwen3"]
    answer = "明天妈妈会喝茶。"
    decoded = qwen3.decode(
        qwen3.encode("<think>\n\n</think>\n\n" + answer + "<|im_end|>"), skip_special_tokens=True
    )
    assert decoded.startswith("<think>")  # the quirk itself
    reward = build_reward(RewardConfig(rewards=[{"type": "chrf"}, {"type": "language", "lang": "zh"}]))
    with_think = reward(
        [[]] * 2, [[{"role": "assistant", "content": decoded}], "<think>\nhmm"], reference=[answer] * 2
    )
    assert with_think == [pytest.approx(reward([[]], [answer], reference=[answer])[0]), 0.0]
    model = _ScriptedModel(qwen3.encode("<think>\n\n</think>\n\n" + answer), eos=None)
    assert generate(model, qwen3, ["x"]) == [answer]


def test_generation_stops_at_the_end_of_turn_token(tokenizers):
    """Gemma ends a turn with <end_of_turn> while its eos is <eos>: evaluation stops at every id in the
    model's generation_config (as TRL's GRPO does), not only at the tokenizer's eos."""
    from semrl.evaluate.generation import generate

    gemma = tokenizers["gemma"]
    end = gemma.convert_tokens_to_ids("<end_of_turn>")
    model = _ScriptedModel(
        gemma.encode("你好", add_special_tokens=False) + [end], eos=[gemma.eos_token_id, end]
    )
    assert generate(model, gemma, ["x"]) == ["你好"]
    assert set(model.stop) == {gemma.eos_token_id, end}


class _ScriptedModel:
    """Stands in for a causal LM: `generate` appends a fixed completion, cut at the first stop id."""

    device = "cpu"

    def __init__(self, completion: list[int], eos):
        from types import SimpleNamespace

        self.completion, self.generation_config, self.stop = (
            completion,
            SimpleNamespace(eos_token_id=eos),
            None,
        )

    def eval(self):
        return self

    def generate(self, input_ids, attention_mask, eos_token_id, **kwargs):
        import torch

        self.stop = eos_token_id if isinstance(eos_token_id, list) else [eos_token_id]
        out = []
        for token in self.completion:
            out.append(token)
            if token in self.stop:
                break
        tail = torch.tensor([out] * input_ids.shape[0], dtype=input_ids.dtype)
        return torch.cat([input_ids, tail], dim=1)


# llama3 and gemma write BOS in the template and on plain text; semrl's llama has a pad token apart from EOS
@pytest.mark.parametrize("family", ["llama3", "gemma", "llama"])
def test_reward_model_scores_the_tokens_trl_trained_on(tmp_path, family):
    """The RM reward and pair accuracy tokenize like TRL's RewardTrainer: a message-list prompt through
    the chat template with one BOS (not the template's plus the tokenizer's), plain text with EOS
    appended (the classifier reads its score at the last non-pad token, so without EOS it reads a
    position it was never trained at)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl.data_utils import _tokenize

    from semrl.models.families import build_tiny_family
    from semrl.models.tiny import TinySpec
    from semrl.rewards.config import RewardModelSpec
    from semrl.rewards.reward_model import RewardModelReward

    texts = [
        row[key]
        for row in map(json.loads, BO_ZH.read_text(encoding="utf-8").splitlines())
        for key in ("source", "reference")
    ]
    lm = build_tiny_family(
        family,
        tmp_path / "lm",
        texts,
        TinySpec(hidden_size=32, intermediate_size=64, num_layers=1, num_heads=2, vocab_size=400),
    )
    AutoModelForSequenceClassification.from_pretrained(lm, num_labels=1).save_pretrained(tmp_path / "rm")
    AutoTokenizer.from_pretrained(lm).save_pretrained(tmp_path / "rm")
    reward = RewardModelReward(
        RewardModelSpec(type="reward_model", model=str(tmp_path / "rm"), transform="raw")
    )
    model, tokenizer = reward.loaded

    def logit(ids: list[int]) -> float:
        with torch.inference_mode():
            return model(input_ids=torch.tensor([ids])).logits[0, 0].item()

    messages, completion = [{"role": "user", "content": texts[0]}], texts[1]
    chat_ids = _tokenize(tokenizer, [*messages, {"role": "assistant", "content": completion}])["input_ids"]
    assert chat_ids.count(tokenizer.bos_token_id) <= 1
    plain_ids = tokenizer(texts[2] + texts[3] + tokenizer.eos_token)[
        "input_ids"
    ]  # TRL appends EOS to plain text
    scores = reward.raw_scores([messages, texts[2]], [completion, texts[3]])
    assert scores == pytest.approx([logit(chat_ids), logit(plain_ids)], abs=1e-5)
