"""The paper's semantic reward: cosine between sentence embeddings, shaped by an adequacy floor.

R_sim = 0 if s <= tau else (s - tau) / (1 - tau), with s = cos(f(y), f(y*)) under a frozen
encoder, y* the reference, the source (reference-free, cross-lingual), or both (mean of the two
cosines). The encoder loads once per process on first use; embeddings of references, sources
and completions are cached, and each distinct text in a call is encoded once.
"""

from __future__ import annotations

from semrl.encoders import cache_for, load_encoder, resolve_encoder
from semrl.rewards.base import RewardComponent
from semrl.rewards.config import SemanticSpec


def shape(similarity: float, tau: float) -> float:
    """The paper's shaping: zero below the floor, linear from the floor to 1."""
    return 0.0 if similarity <= tau else (similarity - tau) / (1.0 - tau)


class SemanticReward(RewardComponent):
    type = "semantic"

    def __init__(self, spec: SemanticSpec, columns: dict[str, str] | None = None):
        super().__init__(spec.name or spec.type, columns)
        self.spec = spec
        self.needs = ("reference", "source") if spec.against == "both" else (spec.against,)
        resolve_encoder(spec.encoder)  # a missing local path fails now, not at step 1
        self._cache = None

    @property
    def cache(self):
        if self._cache is None:
            model = load_encoder(self.spec.encoder, self.spec.device, self.spec.trust_remote_code)
            self._cache = cache_for(model, self.spec.batch_size)
        return self._cache

    def similarities(self, completions: list[str], refs: dict[str, list[str]]) -> list[float]:
        """Raw cosine s per completion (0.0 for empty ones), averaged over the targets."""
        keep = [i for i, text in enumerate(completions) if text.strip()]
        totals = [0.0] * len(completions)
        if keep:
            kept = [completions[i] for i in keep]
            for role in self.needs:
                for i, value in zip(keep, self.cache.cosine(kept, [refs[role][i] for i in keep])):
                    totals[i] += value / len(self.needs)
        return totals

    def score(self, prompts, completions, refs):
        similarities = self.similarities(completions, refs)
        return [shape(s, self.spec.tau) if text.strip() else 0.0 for s, text in zip(similarities, completions)]
