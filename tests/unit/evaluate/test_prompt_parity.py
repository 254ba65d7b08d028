"""Training and evaluation encode a prompt the same way, on a tokenizer that adds BOS to plain text
(as Llama's and Gemma's do) and under a chat template that writes its own BOS: the ids evaluation,
checkpoint selection and the cold-start sample feed the model are the ids TRL's SFTTrainer and
GRPOTrainer train on. And decoding.top_k reaches every sampler.

The ids a generation path feeds the model are read from the model's own first forward call (a
forward pre-hook), with the real generate(), real TRL trainers and the project's tiny Llama."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from conftest import experiment, sample_lines

TEXTS = [f"Translate into Chinese.\n{line}\n" for line in sample_lines("bo.txt")[:3]]


@pytest.fixture(scope="module")
def bos_lm(tiny_lm, tmp_path_factory) -> Path:
    """The tiny Llama with a tokenizer that puts BOS before plain text (a TemplateProcessing
    post-processor, as Llama's tokenizer.json has) and a chat template that writes BOS itself."""
    from tokenizers.processors import TemplateProcessing
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("bos") / "lm"
    shutil.copytree(tiny_lm, folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    bos = tokenizer.bos_token
    tokenizer.backend_tokenizer.post_processor = TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, tokenizer.bos_token_id)]
    )
    tokenizer.chat_template = "{{ bos_token }}" + tokenizer.chat_template
    tokenizer.save_pretrained(folder)
    reloaded = AutoTokenizer.from_pretrained(folder)
    assert reloaded("x")["input_ids"][0] == reloaded.bos_token_id  # the tokenizer adds BOS
    return folder


def prompts_of(chat: bool) -> list:
    return [[{"role": "user", "content": t}] for t in TEXTS] if chat else TEXTS


class FirstInputs:
    """input_ids (padding removed) of a model's first forward call after `arm()`: what generation
    fed it for the prompt."""

    def __init__(self, model) -> None:
        self.seen: list[list[int]] | None = None
        model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def arm(self) -> FirstInputs:
        self.seen = None
        return self

    def _hook(self, module, args, kwargs) -> None:
        if self.seen is None:
            ids, mask = kwargs["input_ids"], kwargs.get("attention_mask")
            mask = torch.ones_like(ids) if mask is None else mask
            self.seen = [
                [int(t) for t, m in zip(row, keep, strict=True) if m]
                for row, keep in zip(ids, mask, strict=True)
            ]


def trl_sft_prompt_ids(model, tokenizer, prompts, tmp_path) -> list[list[int]]:
    """The prompt part of each example as TRL's SFTTrainer tokenized it (the labels it masks), under
    the SFTConfig arguments the SFT stage gives it."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from semrl.experiment_config import SFTSpec
    from semrl.train.common import training_kwargs
    from semrl.train.settings import StageSettings

    completion = [{"role": "assistant", "content": "ok"}] if isinstance(prompts[0], list) else "ok"
    trainer = SFTTrainer(
        model=model,
        args=SFTConfig(
            **training_kwargs(StageSettings(seed=0), SFTSpec(), tmp_path / "sft", "cpu"),
            completion_only_loss=True,
        ),
        train_dataset=Dataset.from_list([{"prompt": p, "completion": completion} for p in prompts]),
        processing_class=tokenizer,
    )
    rows = list(trainer.train_dataset)
    assert all("labels" in row for row in rows), rows[0].keys()
    # the prompt is what the loss masks out (-100) ahead of the completion
    return [row["input_ids"][: next(i for i, v in enumerate(row["labels"]) if v != -100)] for row in rows]


def trl_grpo_prompt_ids(model, tokenizer, prompts, tmp_path):
    from datasets import Dataset

    from semrl.experiment_config import GRPOSpec
    from semrl.train.grpo import grpo_config, resumable_grpo_trainer
    from semrl.train.settings import StageSettings

    spec = GRPOSpec(max_steps=1, num_generations=3, prompts_per_step=1, max_completion_length=2)
    args = grpo_config(StageSettings(seed=0), spec, tmp_path / "grpo", "cpu")
    trainer = resumable_grpo_trainer()(
        model=model,
        reward_funcs=[lambda completions, **_: [0.0] * len(completions)],
        args=args,
        train_dataset=Dataset.from_list([{"prompt": p} for p in prompts]),
        processing_class=tokenizer,
    )
    return [list(ids) for ids in trainer._tokenize_prompts(prompts)[0]], args


@pytest.mark.parametrize("chat", [False, True], ids=["plain", "chat"])
def test_evaluation_feeds_the_model_the_ids_training_saw(bos_lm, tmp_path, chat):
    from semrl.evaluate.generation import GenerationSettings, generate
    from semrl.models.loading import load_causal_lm, load_tokenizer
    from semrl.train.cold_start import sample_completions

    tokenizer = load_tokenizer(str(bos_lm))
    if not chat:
        tokenizer.chat_template = None
    prompts = prompts_of(chat)
    model = load_causal_lm(str(bos_lm), "auto", "cpu")
    sft = trl_sft_prompt_ids(model, tokenizer, prompts, tmp_path)
    grpo, args = trl_grpo_prompt_ids(model, tokenizer, prompts, tmp_path)
    assert sft == grpo
    bos = tokenizer.bos_token_id
    assert all(ids[0] == bos and ids[1] != bos for ids in grpo)  # one BOS, never two

    spy = FirstInputs(model)
    fed, sampled = [], []
    for prompt in prompts:  # one at a time: the first forward call is that prompt's prefill
        generate(model, tokenizer, [prompt], GenerationSettings(max_new_tokens=1))
        fed.append(spy.seen[0])
        spy.arm()
        sample_completions(model, tokenizer, [prompt], args, seed=0, device="cpu")
        sampled.append(spy.seen[0])
        spy.arm()
    assert fed == grpo  # evaluation and checkpoint selection (train/select.py uses generate)
    assert sampled == grpo  # the cold-start sample (tau: cold_start)


def test_top_k_one_samples_the_greedy_answer_and_reaches_grpo(tiny_lm, tmp_path):
    """decoding.top_k is read: top_k 1 turns sampling into the greedy choice in evaluation's
    generate, and it is the top_k of GRPO's GRPOConfig (which the cold-start sample reads too)."""
    from semrl.evaluate.generation import GenerationSettings, generate
    from semrl.evaluate.runner import generation_settings
    from semrl.experiment_config import GRPOSpec, load_experiment
    from semrl.models.loading import load_causal_lm, load_tokenizer
    from semrl.train.grpo import grpo_config
    from semrl.train.settings import StageSettings

    tokenizer = load_tokenizer(str(tiny_lm))
    model = load_causal_lm(str(tiny_lm), "auto", "cpu")
    prompts = [t.strip() for t in sample_lines("bo.txt")[:6]]
    greedy = generate(model, tokenizer, prompts, GenerationSettings(max_new_tokens=8))
    sample = GenerationSettings(max_new_tokens=8, do_sample=True, temperature=1.5, top_p=1.0, seed=1)
    assert generate(model, tokenizer, prompts, sample) != greedy  # sampling differs on a random model
    top1 = GenerationSettings(**{**vars(sample), "top_k": 1})
    assert generate(model, tokenizer, prompts, top1) == greedy

    exp = load_experiment(experiment(tmp_path, decoding={"top_k": 1}), [])
    assert generation_settings(exp).top_k == 1
    args = grpo_config(StageSettings.from_experiment(exp), GRPOSpec(), tmp_path / "grpo", "cpu")
    assert args.top_k == 1
    unset = load_experiment(experiment(tmp_path), [])
    default = grpo_config(StageSettings.from_experiment(unset), GRPOSpec(), tmp_path / "g2", "cpu")
    assert default.top_k == 0  # TRL's own default: no filter
