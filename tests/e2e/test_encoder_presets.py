"""Pretrained-encoder presets (LaBSE for Tibetan) and "any encoder sentence-transformers loads works
as the semantic reward and the similarity metric", checked with a real, locally built encoder whose
architecture differs from the packaged MiniLM in every way that matters: XLM-R backbone (positions
offset by the padding index, one token type), a Unigram/Metaspace tokenizer, CLS pooling, a Dense
projection to another width, a Normalize module and a default prompt, plus a short max_seq_length
that long inputs must be truncated to."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import run_cli, sample_lines, write_jsonl, write_lines
from semrl.experiment_config import load_experiment
from semrl.rewards.encoder_binding import uses_run_encoder
from semrl.run_folder import Run

ROOT = Path(__file__).resolve().parents[2]
PAPER = ROOT / "configs" / "paper"
BO_ZH = ROOT / "configs" / "examples" / "data" / "tiny-bo-zh.jsonl"
LABSE = "sentence-transformers/LaBSE"
LABSE_PRESETS = sorted(PAPER.glob("*-labse.yaml"))
MAX_SEQ = 48


def build_xlmr_encoder(out_dir: Path, texts: list[str]) -> Path:
    """A tiny XLM-R sentence encoder (CLS pooling, Dense, Normalize, a default prompt), saved with
    SentenceTransformer.save: a different shape from models/tiny.py's BERT + mean pooling."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Dense, Normalize, Pooling, Transformer
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaModel

    torch.manual_seed(0)
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # XLM-R's order: pad id 1, as padding_idx
    core = Tokenizer(models.Unigram())
    core.normalizer = normalizers.NFKC()
    core.pre_tokenizer = pre_tokenizers.Metaspace()
    core.decoder = decoders.Metaspace()
    core.train_from_iterator(
        texts,
        trainers.UnigramTrainer(
            vocab_size=400, special_tokens=specials, unk_token="<unk>", show_progress=False
        ),
    )
    bos, eos = core.token_to_id("<s>"), core.token_to_id("</s>")
    core.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", bos), ("</s>", eos)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<s>",
        eos_token="</s>",
        cls_token="<s>",
        sep_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
        model_max_length=MAX_SEQ,
    )
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=MAX_SEQ + 2,
        type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=bos,
        eos_token_id=eos,
    )
    backbone = out_dir / "backbone"
    XLMRobertaModel(config, add_pooling_layer=False).save_pretrained(backbone)
    tokenizer.save_pretrained(backbone)
    word = Transformer(str(backbone), max_seq_length=MAX_SEQ)
    width = word.get_embedding_dimension()
    modules = [word, Pooling(width, pooling_mode="cls"), Dense(width, 24), Normalize()]
    model = SentenceTransformer(
        modules=modules, device="cpu", prompts={"query": "query: "}, default_prompt_name="query"
    )
    model.save(str(out_dir / "encoder"))
    shutil.rmtree(backbone)
    return out_dir / "encoder"


@pytest.fixture(scope="module")
def xlmr_encoder(tmp_path_factory) -> Path:
    texts = sample_lines("en.txt") * 2 + sample_lines("bo.txt") * 2 + sample_lines("zh.txt") * 2
    return build_xlmr_encoder(tmp_path_factory.mktemp("xlmr"), texts)


def semantic_encoders(exp) -> list[str]:
    configs = [exp.rewards] + [arm.rewards for arm in exp.arms]
    return [
        spec.encoder
        for config in configs
        if config is not None
        for spec in [*config.rewards, config.gate]
        if spec is not None and spec.type == "semantic"
    ]


# --- the shipped LaBSE presets ---------------------------------------------------------------------


def test_labse_presets_are_shipped_for_every_trained_encoder_preset():
    experiments = [
        p
        for p in PAPER.glob("*.yaml")
        if not p.stem.endswith(("-labse", "-recommended"))
        and "arms" in (yaml.safe_load(p.read_text(encoding="utf-8")) or {})
    ]  # not suites; a -recommended recipe changes GRPO, not the encoder, so it has no LaBSE twin
    trained = {p.stem for p in experiments if uses_run_encoder(load_experiment(p))}
    assert trained and {f"{stem}-labse" for stem in trained} <= {p.stem for p in LABSE_PRESETS}


@pytest.mark.parametrize("path", LABSE_PRESETS, ids=lambda p: p.name)
def test_labse_preset_validates_and_differs_only_in_the_encoder(path):
    exp = load_experiment(path)
    base = load_experiment(PAPER / path.name.replace("-labse", ""))
    encoders = semantic_encoders(exp)
    assert encoders and set(encoders) == {LABSE} and exp.eval.encoder == LABSE
    assert not uses_run_encoder(exp) and exp.encoder.train is None and exp.encoder.base is None
    assert len(encoders) == len(semantic_encoders(base))
    for section in ("model", "task", "sft", "grpo", "decoding"):
        assert getattr(exp, section) == getattr(base, section), section
    assert [(a.name, a.recipe) for a in exp.arms] == [(a.name, a.recipe) for a in base.arms]
    assert [[(s.type, s.weight) for s in exp.reward_for(a).rewards] for a in exp.arms] == [
        [(s.type, s.weight) for s in base.reward_for(a).rewards] for a in base.arms
    ]


def test_labse_preset_offline_without_the_model_names_it(tmp_path):
    """Offline with nothing cached, the dry run says which encoder to download, in one line."""
    from semrl.hub import cached_locally

    if cached_locally(LABSE):
        pytest.skip("LaBSE is in the local cache")
    result = run_cli(
        "run", str(PAPER / "bo-headline-labse.yaml"), "--dry-run", "--out", str(tmp_path / "run")
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert f"eval.encoder: encoder '{LABSE}'" in result.stderr and "HF_HUB_OFFLINE" in result.stderr


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, marks=pytest.mark.slow) if i else p for i, p in enumerate(LABSE_PRESETS)],
    ids=lambda p: p.name,
)
def test_labse_preset_dry_runs_with_a_local_encoder_in_its_place(path, tmp_path, tiny_lm, xlmr_encoder):
    """The preset as shipped, with only what a test cannot download swapped for local stand-ins."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    text = json.dumps(data).replace(LABSE, str(xlmr_encoder))
    data = json.loads(text)
    data["model"] = {"path": str(tiny_lm)}
    data["data"] = {"train": str(BO_ZH), "test_size": 8}
    data["sft"].update(examples=40, max_length=128)  # the tiny stand-in policy has 256 positions
    data["grpo"]["max_completion_length"] = data["decoding"]["max_new_tokens"] = 32
    config = tmp_path / path.name
    config.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    result = run_cli("run", str(config), "--dry-run", "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "semantic_rl" in result.stdout and not (tmp_path / "run").exists()


# --- any sentence-transformers encoder as reward and metric ----------------------------------------


def test_local_encoder_is_not_the_default_shape(xlmr_encoder):
    modules = json.loads((xlmr_encoder / "modules.json").read_text(encoding="utf-8"))
    assert [m["type"].rsplit(".", 1)[-1] for m in modules] == ["Transformer", "Pooling", "Dense", "Normalize"]
    assert (
        json.loads((xlmr_encoder / "config.json").read_text(encoding="utf-8"))["model_type"] == "xlm-roberta"
    )


def test_local_encoder_scores_similarity_through_the_cli(tmp_path, xlmr_encoder):
    refs = sample_lines("bo.txt")[:6]
    hyps = sample_lines("bo.hyp.txt")[:5] + ["ཀ་ཁ་ག་ " * 200]  # past max_seq_length: truncated, no crash
    hyp, ref = write_lines(tmp_path / "hyp.txt", hyps), write_lines(tmp_path / "ref.txt", refs)
    result = run_cli(
        "score",
        "--hyp",
        str(hyp),
        "--ref",
        str(ref),
        "--lang",
        "bo",
        "--metrics",
        "sim,chrf",
        "--encoder",
        str(xlmr_encoder),
        "--device",
        "cpu",
        "--json",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout)
    text = json.dumps(out)
    assert str(xlmr_encoder) in text, text[:2000]
    values = [v for k, v in _walk(out) if k in ("sim", "value") and isinstance(v, float)]
    assert values and all(math.isfinite(v) and -1.0 <= v <= 1.0 for v in values), text[:2000]


def _walk(node, key=None):
    """(key, value) of every leaf of a JSON object."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v, key)
    else:
        yield key, node


def test_local_encoder_is_the_semantic_reward_and_its_audit(tmp_path, xlmr_encoder):
    reward = tmp_path / "reward.yaml"
    reward.write_text(
        yaml.safe_dump(
            {
                "rewards": [
                    {
                        "type": "semantic",
                        "weight": 1.0,
                        "encoder": str(xlmr_encoder),
                        "against": "both",
                        "device": "cpu",
                    },
                    {"type": "language", "weight": 1.0, "lang": "zh"},
                ]
            }
        ),
        encoding="utf-8",
    )
    pairs = [json.loads(line) for line in BO_ZH.read_text(encoding="utf-8").splitlines()[:8]]
    rows = [
        {"prompt": r["source"], "completion": c, "reference": r["reference"], "source": r["source"]}
        for r, c in zip(pairs, [p["reference"] for p in pairs[1:]] + [""], strict=True)
    ]
    rows.append({**rows[0], "completion": "茶" * 300})  # past max_seq_length
    scored = tmp_path / "scored.jsonl"
    result = run_cli(
        "reward",
        "--config",
        str(reward),
        "--input",
        str(write_jsonl(tmp_path / "in.jsonl", rows)),
        "--output",
        str(scored),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = [json.loads(line) for line in scored.read_text(encoding="utf-8").splitlines()]
    semantic = [row["components"]["semantic"] for row in out]
    assert len(semantic) == len(rows) and all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in semantic), (
        semantic
    )
    assert semantic[-2] == 0.0 and any(v > 0.0 for v in semantic)  # empty completion scores 0

    audit_input = write_jsonl(
        tmp_path / "audit.jsonl", [{"reference": r["reference"], "source": r["source"]} for r in pairs]
    )
    result = run_cli("reward", "audit", "--config", str(reward), "--input", str(audit_input), "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    numbers = [v for _, v in _walk(json.loads(result.stdout)) if isinstance(v, float)]
    assert numbers and all(math.isfinite(v) for v in numbers)


def test_local_encoder_in_a_tiny_run_as_reward_and_metric(tmp_path, xlmr_encoder):
    """`semrl run`: GRPO on the local encoder's reward, then evaluation with it as the sim metric."""
    config = tmp_path / "run.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "local-encoder",
                "model": {
                    "tiny": {
                        "vocab_size": 384,
                        "hidden_size": 32,
                        "intermediate_size": 64,
                        "num_layers": 1,
                        "num_heads": 2,
                    }
                },
                "task": {"type": "translate", "source_lang": "bo", "target_lang": "zh"},
                "data": {"train": str(BO_ZH), "test_size": 4},
                "rewards": {
                    "rewards": [
                        {
                            "type": "semantic",
                            "weight": 1.5,
                            "encoder": str(xlmr_encoder),
                            "against": "reference",
                        },
                        {"type": "language", "weight": 1.0, "lang": "zh"},
                    ]
                },
                "grpo": {
                    "max_steps": 2,
                    "num_generations": 2,
                    "prompts_per_step": 2,
                    "max_completion_length": 8,
                    "save_steps": 2,
                    "logging_steps": 1,
                },
                "decoding": {"max_new_tokens": 8},
                "eval": {"encoder": str(xlmr_encoder), "resamples": 10, "metrics": ["sim", "chrf"]},
                "arms": [{"name": "rl", "recipe": "grpo"}],
            },
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    out = tmp_path / "run"
    result = run_cli("run", str(config), "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    for arm in ("base", "rl"):
        sim = results["arms"][arm]["task"]["sim"]
        assert math.isfinite(sim["value"]) and -1.0 <= sim["value"] <= 1.0, sim
        assert str(xlmr_encoder) in sim["signature"]
    state = json.loads(
        sorted((Run(out).arm_stage("rl", "grpo")).glob("checkpoint-*/trainer_state.json"))[-1].read_text(
            encoding="utf-8"
        )
    )
    logged = [v for entry in state["log_history"] for k, v in entry.items() if "semantic" in k]
    assert logged and all(math.isfinite(v) for v in logged), state["log_history"]
