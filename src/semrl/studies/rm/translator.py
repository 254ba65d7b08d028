"""Machine translation of preference pairs with a local causal LM (the RM transfer study's
"translate the training pairs" arm): an evaluation-style generator wrapped as a Translator."""

from __future__ import annotations

from semrl.data.preferences import Translator
from semrl.devices import pick_device
from semrl.errors import UserError
from semrl.evaluate.generation import GenerationSettings, generate
from semrl.models.loading import load_causal_lm, load_tokenizer


def model_translator(
    path: str, template: str, max_new_tokens: int = 128, device: str = "auto", trust_remote_code: bool = False
) -> Translator:
    """A translator from a local causal LM: each text is put into `template` ({text}) and decoded
    greedily. Empty texts stay empty (nothing to translate)."""
    if "{text}" not in template:
        raise UserError(f"translation template {template!r}: must contain {{text}}")
    device = pick_device(device)
    tokenizer = load_tokenizer(path, trust_remote_code)
    model = load_causal_lm(path, "auto", device, trust_remote_code)
    settings = GenerationSettings(max_new_tokens=max_new_tokens)

    def translate(texts: list[str]) -> list[str]:
        keep = [i for i, text in enumerate(texts) if text.strip()]
        outputs = generate(model, tokenizer, [template.replace("{text}", texts[i]) for i in keep], settings)
        result = [""] * len(texts)
        for i, output in zip(keep, outputs, strict=True):
            result[i] = output
        return result

    return translate
