"""The sandbox's cache keys: what a model is, not where or when it was trained."""

from __future__ import annotations

from semrl.sandbox.side_experiments import fingerprint


def test_a_model_folders_fingerprint_ignores_the_trainers_bookkeeping(tmp_path):
    model = tmp_path / "final"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"weights")
    (model / "config.json").write_text("{}", encoding="utf-8")
    (model / "trainer_state.json").write_text('{"train_runtime": 1.0}', encoding="utf-8")
    (model / "training_args.bin").write_bytes(b"/first/run/folder")
    first = fingerprint(model)
    (model / "trainer_state.json").write_text('{"train_runtime": 2.5}', encoding="utf-8")
    (model / "training_args.bin").write_bytes(b"/another/run/folder")
    assert fingerprint(model) == first  # trained again elsewhere, the same model
    (model / "model.safetensors").write_bytes(b"other weights")
    assert fingerprint(model) != first
    (model / "model.safetensors").write_bytes(b"weights")
    (model / "tokenizer.json").write_text("{}", encoding="utf-8")
    assert fingerprint(model) != first  # a file more is another model
