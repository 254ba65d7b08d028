"""What semrl's worker processes import, imported once by the forkserver that forks them.

Why: a run trains its independent stages and evaluates its arms in worker processes, and a spawned
worker would import torch, transformers, TRL and sentence-transformers itself: 10-15 s per worker
on a small CPU, for every pool of a run. The forkserver (workers.pool_context) imports this
module once; every worker is then a fork of it, with these modules already loaded and untouched.
Nothing here computes a tensor or touches a GPU, so forking the server stays safe. The library
settings that `semrl`'s main() puts in the environment are inherited from the run's process."""

from __future__ import annotations

import warnings

with warnings.catch_warnings():  # the filter of the workers' own imports (workers.init_worker)
    warnings.filterwarnings("ignore", category=FutureWarning)
    import sentence_transformers  # noqa: F401
    import torch  # noqa: F401
    import transformers
    import trl

    for _name in ("AutoModelForCausalLM", "AutoModelForSequenceClassification", "AutoTokenizer", "Trainer"):
        getattr(transformers, _name)  # transformers and TRL load their classes on first use
    for _name in ("GRPOTrainer", "SFTTrainer", "RewardTrainer"):
        getattr(trl, _name)

    import semrl.evaluate.task  # noqa: F401
    import semrl.metrics.semantic  # noqa: F401
    import semrl.pipeline.evaluation  # noqa: F401
    import semrl.pipeline.experiment  # noqa: F401 - the stage runner the scheduler's workers are sent
    import semrl.pipeline.stage_cache  # noqa: F401
