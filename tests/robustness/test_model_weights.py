"""Model folders whose weights are missing or torn, and multi-step commands that must refuse a
broken input before their first unit of work: every command's preflight reads the weights' headers
(no tensor is loaded) and refuses with exit 2, one line naming the file, nothing written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import BO_ZH, cli_in_process, experiment, stderr_lines, write_jsonl

RL = {"rewards": {"rewards": [{"type": "language", "lang": "zh"}]}}


def refused(result, *fragments: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout[-1000:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    lines = stderr_lines(result)
    assert len(lines) == 1 and lines[0].startswith("semrl: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def folder(path: Path) -> Path:
    path.mkdir()
    return path


def truncate(file: Path, keep: float = 0.5) -> Path:
    data = file.read_bytes()
    file.write_bytes(data[: int(len(data) * keep)])
    return file


def damaged(model: Path, target: Path, how: str) -> tuple[Path, Path]:
    """(a copy of `model` damaged `how`, the file the refusal must name)."""
    shutil.copytree(model, target)
    weights = target / "model.safetensors"
    if how == "missing":
        weights.unlink()
        return target, target
    if how == "truncated":
        return target, truncate(weights)
    if how == "header_only":  # cut right after the header: every tensor's bytes are gone
        length = int.from_bytes(weights.read_bytes()[:8], "little")
        weights.write_bytes(weights.read_bytes()[: 8 + length])
        return target, weights
    if how == "not_safetensors":
        weights.write_bytes(b"<html>rate limited</html>")
        return target, weights
    raise ValueError(how)


HOWS = ["missing", "truncated", "header_only", "not_safetensors"]


@pytest.mark.parametrize("how", HOWS)
def test_policy_with_missing_or_torn_weights_is_refused_by_run_before_anything(tiny_lm, tmp_path, how):
    """The encoder stage would train first and the policy fail to load after it: refused at once."""
    model, named = damaged(tiny_lm, tmp_path / "policy", how)
    config = experiment(tmp_path, model={"path": str(model)}, **RL)
    out = tmp_path / "run"
    line = refused(cli_in_process("run", str(config), "--out", str(out)), "model.path", str(named))
    assert ("no weights" in line) == (how == "missing"), line
    assert not out.exists()


def test_train_and_eval_and_init_refuse_torn_weights(tiny_lm, tmp_path):
    model, named = damaged(tiny_lm, tmp_path / "policy", "truncated")
    config = experiment(tmp_path, model={"path": str(model)}, **RL)
    refused(cli_in_process("train", "sft", "--config", str(config), "--out", str(tmp_path / "t")), str(named))
    good = experiment(folder(tmp_path / "good"), model={"path": str(tiny_lm)}, **RL)
    refused(
        cli_in_process(
            "train", "sft", "--config", str(good), "--init", str(model), "--out", str(tmp_path / "i")
        ),
        "--init",
        str(named),
    )
    refused(
        cli_in_process("eval", "--model", str(model), "--config", str(good), "--out", str(tmp_path / "e")),
        "--model",
        str(named),
    )
    assert not any((tmp_path / name).exists() for name in ("t", "i", "e"))


def test_sharded_checkpoint_needs_every_shard_whole(tiny_lm, tmp_path):
    """A sharded checkpoint (transformers' own index + shards) passes whole; a missing or torn
    shard, or an index that places a tensor in a shard without it, is named."""
    from transformers import AutoModelForCausalLM

    from semrl.errors import UserError
    from semrl.weights import check_weights

    sharded = tmp_path / "sharded"
    shutil.copytree(tiny_lm, sharded)
    (sharded / "model.safetensors").unlink()
    AutoModelForCausalLM.from_pretrained(tiny_lm).save_pretrained(sharded, max_shard_size="100KB")
    index = json.loads((sharded / "model.safetensors.index.json").read_text(encoding="utf-8"))
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) >= 2
    check_weights(sharded, "model.path")

    truncate(sharded / shards[1])
    with pytest.raises(UserError, match=f"model.path: {sharded / shards[1]} is truncated"):
        check_weights(sharded, "model.path")
    (sharded / shards[1]).unlink()
    with pytest.raises(
        UserError, match=f"{sharded / shards[1]} is missing .listed in model.safetensors.index"
    ):
        check_weights(sharded, "model.path")

    AutoModelForCausalLM.from_pretrained(tiny_lm).save_pretrained(sharded, max_shard_size="100KB")
    moved = next(t for t, s in index["weight_map"].items() if s == shards[0])
    index["weight_map"][moved] = shards[1]
    (sharded / "model.safetensors.index.json").write_text(json.dumps(index), encoding="utf-8")
    with pytest.raises(UserError, match=f"lacks tensor '{moved}'"):
        check_weights(sharded, "model.path")


def score_sim(hyp: Path, encoder: Path):
    return cli_in_process(
        "score",
        "--hyp",
        str(hyp),
        "--ref",
        str(hyp),
        "--lang",
        "en",
        "--metrics",
        "sim",
        "--encoder",
        str(encoder),
    )


def test_encoders_with_missing_or_torn_weights_are_refused_by_every_command(encoder_folder, tmp_path):
    """A sentence-transformers folder: the Transformer module's weights (whichever module path the
    installed library writes in modules.json) and every module's safetensors file."""
    hyp = tmp_path / "hyp.txt"
    hyp.write_text("a b c\n", encoding="utf-8")
    empty, _ = damaged(encoder_folder, tmp_path / "empty", "missing")
    refused(score_sim(hyp, empty), "--encoder", f"{empty} has no weights")
    encoder, named = damaged(encoder_folder, tmp_path / "encoder", "truncated")
    refused(score_sim(hyp, encoder), "--encoder", str(named))
    semantic = {"type": "semantic", "encoder": str(encoder), "against": "reference"}
    config = experiment(tmp_path, rewards={"rewards": [semantic]}, arms=[{"name": "rl", "recipe": "grpo"}])
    refused(cli_in_process("run", str(config), "--out", str(tmp_path / "run")), str(named))
    reward = tmp_path / "reward.yaml"
    reward.write_text(yaml.safe_dump({"rewards": [semantic]}), encoding="utf-8")
    rows = write_jsonl(tmp_path / "rows.jsonl", [{"prompt": "p", "completion": "c", "reference": "r"}])
    out = tmp_path / "scored.jsonl"
    refused(
        cli_in_process("reward", "--config", str(reward), "--input", str(rows), "--output", str(out)),
        str(named),
    )
    base = experiment(folder(tmp_path / "b"), encoder={"base": str(encoder)}, **RL)
    refused(cli_in_process("run", str(base), "--out", str(tmp_path / "run2")), "encoder.base", str(named))
    assert not any((tmp_path / name).exists() for name in ("run", "run2", "scored.jsonl"))


def test_reward_model_with_torn_weights_and_best_of_n_with_an_encoder(
    tiny_classifier, encoder_folder, tmp_path
):
    """best-of-n scores with a one-label classifier: a torn one is named, and a sentence encoder is
    refused as not being a reward model (its scores would come from a random head)."""
    rm, named = damaged(tiny_classifier, tmp_path / "rm", "truncated")
    candidates = write_jsonl(tmp_path / "c.jsonl", [{"prompt": "p", "candidates": ["a", "b"]}])
    out = tmp_path / "best.jsonl"
    refused(
        cli_in_process(
            "rm", "best-of-n", "--model", str(rm), "--candidates", str(candidates), "--out", str(out)
        ),
        str(named),
    )
    refused(
        cli_in_process(
            "rm",
            "best-of-n",
            "--model",
            str(encoder_folder),
            "--candidates",
            str(candidates),
            "--out",
            str(out),
        ),
        "--model",
        "not a sequence classifier",
    )
    spec = {"type": "reward_model", "model": str(rm)}
    config = experiment(tmp_path, rewards={"rewards": [spec]}, arms=[{"name": "rl", "recipe": "grpo"}])
    refused(cli_in_process("run", str(config), "--out", str(tmp_path / "run")), str(named))
    assert not out.exists() and not (tmp_path / "run").exists()


@pytest.mark.parametrize("broken_as", ["torn", "encoder"])
def test_transfer_refuses_a_broken_second_start_before_the_first_trains(
    tiny_lm, encoder_folder, tmp_path, broken_as
):
    """Each start's whole preflight runs before the first start trains: torn weights, or a model of
    the wrong kind (a sentence encoder as a policy), in start b is named before start a trains."""
    if broken_as == "torn":
        broken, named = damaged(tiny_lm, tmp_path / "broken", "truncated")
        expected = str(named)
    else:
        broken, expected = encoder_folder, "not a causal language model"
    config = experiment(tmp_path, BO_ZH, **RL)
    out = tmp_path / "t"
    refused(
        cli_in_process(
            "transfer",
            "--config",
            str(config),
            "--k",
            "2",
            "--from",
            f"a={tiny_lm}",
            "--from",
            f"b={broken}",
            "--out",
            str(out),
        ),
        f"--from b={broken}",
        expected,
    )
    assert not out.exists()


def test_rm_transfer_checks_every_input_before_the_first_reward_model(tiny_classifier, tmp_path):
    """A torn reward_models entry and a representation layer the base lacks are refused before any
    reward model trains (the layer is read only once they all have)."""
    pairs = write_jsonl(
        tmp_path / "pairs.jsonl",
        [
            {"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}", "language": lang}
            for lang in ("en", "bo")
            for i in range(6)
        ],
    )
    rm, named = damaged(tiny_classifier, tmp_path / "rm", "truncated")
    config = tmp_path / "rm.yaml"
    base = {"model": {"tiny": {"num_layers": 2}}, "data": {"files": [{"path": str(pairs)}]}}
    config.write_text(yaml.safe_dump({**base, "reward_models": {"bo": str(rm)}}), encoding="utf-8")
    out = tmp_path / "out"
    refused(
        cli_in_process("rm", "transfer", "--config", str(config), "--out", str(out)),
        "reward_models.bo",
        str(named),
    )
    config.write_text(yaml.safe_dump({**base, "representation": {"layer": 7}}), encoding="utf-8")
    refused(
        cli_in_process("rm", "transfer", "--config", str(config), "--out", str(out)),
        "representation.layer: 7 is out of range for model.tiny (2 layers",
    )
    assert not out.exists()


@pytest.mark.parametrize("pairs_per_language", [1, 2])
def test_rm_transfer_refuses_a_language_too_small_to_train_and_judge(tmp_path, pairs_per_language):
    """One pair (none held out: the language would drop out of the matrix) or two (one left to train
    on): refused naming the file, the language and the minimum."""
    rows = [
        {"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}", "language": "en"} for i in range(6)
    ] + [
        {"prompt": f"b{i}", "chosen": f"ok {i}", "rejected": f"no {i}", "language": "bo"}
        for i in range(pairs_per_language)
    ]
    pairs = write_jsonl(tmp_path / "pairs.jsonl", rows)
    config = tmp_path / "rm.yaml"
    config.write_text(yaml.safe_dump({"model": {"tiny": {}}, "data": {"files": [{"path": str(pairs)}]}}))
    out = tmp_path / "out"
    line = refused(
        cli_in_process("rm", "transfer", "--config", str(config), "--out", str(out)), str(pairs), "'bo'"
    )
    if pairs_per_language == 1:
        assert "none is held out" in line and "at least 3 pairs" in line, line
    else:
        assert "1 training pair(s); a reward model needs at least 2" in line, line
    assert not out.exists()
