"""semrl's rewards for TRL's own CLI: `trl grpo --reward_funcs semrl.rewards.trl.reward`.

TRL's script imports each `--reward_funcs` entry by its dotted path and takes the attribute as
it is, so a reward that needs a config (encoder, tau, language) cannot receive one there. These
attributes find theirs elsewhere:

- `reward`: the reward YAML named by the environment variable SEMRL_REWARD_CONFIG (the same file
  `semrl reward --config` and a GRPO stage read), composed as semrl composes it: a weighted sum,
  optional gate, each term logged through TRL's `log_metric` as `reward/<name>`.
- `language_<code>` (e.g. `language_bo`, `language_zh`, `language_en`): the paper's binary
  language reward for that language, 1 when at least 95% of the letters are in its script.

    SEMRL_REWARD_CONFIG=reward.yaml trl grpo --model_name_or_path MODEL --dataset_name DATA \\
        --reward_funcs semrl.rewards.trl.reward

The attributes are built when TRL looks them up (module `__getattr__`), not when semrl is
imported; the heavy encoder still loads on the first call. A missing variable, a missing or
invalid file, or a setting only a semrl GRPO stage can resolve (`tau: cold_start`, `contrast`,
`encoder: run:encoder`) ends the script at lookup, before the model loads, with one line on
stderr and exit code 2: TRL's import would otherwise bury the message in a traceback. Code that
wants the error as an exception calls `load_trl_reward` or `language_reward` instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

from semrl.config_files import load_config
from semrl.errors import UserError
from semrl.rewards.build import build_reward
from semrl.rewards.compose import ComposedReward
from semrl.rewards.config import LanguageSpec, RewardConfig
from semrl.rewards.language import LanguageReward
from semrl.rewards.semantic import SemanticSpec
from semrl.text.scripts import resolve_scripts

CONFIG_VARIABLE = "SEMRL_REWARD_CONFIG"
LANGUAGE_PREFIX = "language_"
RUN_ENCODER = "run:encoder"  # rewards/run_encoder.py's name; only `semrl run` binds it
_BUILT: dict[str, Any] = {}


def _stage_only(config: RewardConfig, path: Path) -> None:
    """Refuse what only a semrl GRPO stage can resolve: TRL's CLI has no cold start, no stage rows
    for a contrast bank, and no run whose encoder `run:encoder` could name."""
    for index, spec in enumerate([*config.rewards, config.gate]):
        if not isinstance(spec, SemanticSpec):  # only the semantic type has these settings
            continue
        where = f"{path}: rewards.{index}" if index < len(config.rewards) else f"{path}: gate"
        if spec.cold_start is not None:
            raise UserError(
                f"{where}.tau: cold_start needs a semrl GRPO stage (a quantile of the cold-start "
                "model's scores); under trl grpo give a number, e.g. tau: 0.3"
            )
        if spec.contrast is not None:
            raise UserError(
                f"{where}.contrast draws its bank from a semrl stage's rows; under trl grpo remove it"
            )
        if spec.encoder == RUN_ENCODER:
            raise UserError(
                f"{where}.encoder: run:encoder names the encoder a `semrl run` trains; under trl "
                "grpo give that folder (RUN_DIR/encoder/final) or a hub id"
            )


def load_trl_reward(path: str | Path) -> ComposedReward:
    """The composed reward of a reward YAML, checked for TRL's CLI (UserError when it cannot run there)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"{CONFIG_VARIABLE}={path}: no such file; point it at a reward YAML (see semrl reward --help)"
        )
    config = load_config(RewardConfig, path)
    _stage_only(config, path)
    reward = build_reward(config)
    reward.__name__ = "semrl_reward"  # TRL logs rewards/semrl_reward/mean; the terms as reward/<name>
    return reward


def configured_reward() -> ComposedReward:
    """The reward of the YAML that SEMRL_REWARD_CONFIG names."""
    value = os.environ.get(CONFIG_VARIABLE, "").strip()
    if not value:
        raise UserError(
            f"{CONFIG_VARIABLE} is not set: semrl.rewards.trl.reward reads its reward YAML from it, "
            f"e.g. {CONFIG_VARIABLE}=reward.yaml trl grpo ... --reward_funcs semrl.rewards.trl.reward"
        )
    return load_trl_reward(value)


def language_reward(lang: str) -> LanguageReward:
    """The paper's R_lang for `lang` (1 if >= 95% of the letters are in its script, else 0)."""
    try:
        resolve_scripts(lang)
    except ValueError as exc:
        raise UserError(f"semrl.rewards.trl.language_{lang}: {exc}") from None
    spec = LanguageSpec(type="language", lang=lang, name=f"language_{lang}")
    return LanguageReward(spec, {"reference": "reference", "source": "source"})


def _fail(error: UserError) -> NoReturn:
    sys.stderr.write(f"semrl: error: {error}\n")
    sys.stderr.flush()
    raise SystemExit(2)


def __getattr__(name: str) -> Any:
    """`reward` and `language_<code>`, built on the first lookup (TRL's getattr) and kept."""
    if name in _BUILT:
        return _BUILT[name]
    factory: Callable[[], ComposedReward | LanguageReward]
    if name == "reward":
        factory = configured_reward
    elif name.startswith(LANGUAGE_PREFIX) and len(name) > len(LANGUAGE_PREFIX):
        factory = partial(language_reward, name[len(LANGUAGE_PREFIX) :])
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        _BUILT[name] = factory()
    except UserError as error:
        _fail(error)
    return _BUILT[name]


def __dir__() -> list[str]:
    return sorted([*globals(), "reward", "language_bo", "language_zh", "language_en"])
