"""Language reward: 1 if the output's letters are in the target script at or above a threshold,
else 0 (the paper's binary R_lang); `mode: continuous` returns the share itself."""

from __future__ import annotations

from semrl.rewards.base import RewardComponent
from semrl.rewards.config import LanguageSpec
from semrl.text.scripts import resolve_scripts, target_share


class LanguageReward(RewardComponent):
    type = "language"

    def __init__(self, spec: LanguageSpec, columns: dict[str, str] | None = None):
        super().__init__(spec.name or spec.type, columns)
        self.spec = spec
        self.scripts = resolve_scripts(spec.lang, spec.script)

    def score(self, prompts, completions, refs):
        shares = [target_share(text, self.scripts) for text in completions]
        if self.spec.mode == "continuous":
            return shares
        return [1.0 if share >= self.spec.threshold else 0.0 for share in shares]
