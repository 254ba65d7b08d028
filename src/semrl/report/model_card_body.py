"""The text of a semrl model card: what was trained, from what, with which reward and data, and
what evaluation found. Only counts and file names of the data, never its rows (a card is public)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from semrl.experiment_config import ExperimentConfig
from semrl.recipes.plan import StagePlan
from semrl.train.select import describe as describe_selection

PAPER = (
    "@misc{su2026semanticrl,\n  author = {Su and others},\n  year = {2026},\n"
    "  note = {Semantic-reward reinforcement learning for low-resource language expansion},\n"
    "  eprint = {2605.14366},\n  archivePrefix = {arXiv},\n  url = {https://arxiv.org/abs/2605.14366}\n}"
)
SOURCE_GROUNDED = (
    "@misc{su2026sourcegrounded,\n  author = {Su and others},\n  year = {2026},\n"
    "  note = {Source-grounded semantic RL: train, reinforce, recover},\n  eprint = {2605.29502},\n"
    "  archivePrefix = {arXiv},\n  url = {https://arxiv.org/abs/2605.29502}\n}"
)
ROWS = {
    "cold_start": "the first {n} training rows (cold start)",
    "rest": "the training rows after the first {n}",
    "all": "every training row",
}
SFT_KEYS = (
    "epochs",
    "max_steps",
    "learning_rate",
    "batch_size",
    "grad_accum",
    "scheduler",
    "warmup_ratio",
    "max_length",
)
GRPO_KEYS = (
    "epochs",
    "max_steps",
    "learning_rate",
    "num_generations",
    "prompts_per_step",
    "beta",
    "loss_type",
    "epsilon",
    "scale_rewards",
    "max_completion_length",
    "temperature",
    "top_p",
    "mask_truncated_completions",
)


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _ci(entry: dict[str, Any]) -> str:
    ci = entry.get("ci95")
    return f"[{_fmt(float(ci[0]))}, {_fmt(float(ci[1]))}]" if ci else "n/a"


def describe_model(reference: str | None, hub_id: str | None) -> str:
    if reference is None:
        return "a tiny randomly initialised model semrl built for this run (not a pretrained model)"
    if hub_id and hub_id == reference:
        return f"[{hub_id}](https://huggingface.co/{hub_id})"
    if hub_id:
        return (
            f"a local copy of [{hub_id}](https://huggingface.co/{hub_id}) (folder `{Path(reference).name}`)"
        )
    return f"the local model folder `{Path(reference).name}`"


def describe_encoder(name: str) -> str:
    if name == "default":
        return "all-MiniLM-L6-v2 (semrl's packaged default)"
    if name == "run:encoder":
        return "the sentence encoder this run trained first (encoder/final)"
    return f"`{name}`" if not Path(name).exists() else f"local folder `{Path(name).name}`"


def _component(spec, tau_cold: dict[str, Any]) -> list[Any]:
    name = spec.name or spec.type
    details = []
    if spec.type == "semantic":
        tau = tau_cold.get(name, {}).get("value") if spec.cold_start else spec.tau
        rule = f" (cold start, quantile {spec.cold_start.quantile:g})" if spec.cold_start else ""
        details += [
            f"tau {_fmt(tau) if tau is not None else 'set at the GRPO start'}{rule}",
            f"encoder {describe_encoder(spec.encoder)}",
            f"against {spec.against}",
        ]
        if spec.contrast is not None:
            contrast = spec.contrast
            setting = (
                f"temperature {contrast.temperature:g}, weight {contrast.weight:g}"
                if contrast.mode == "retrieval"
                else f"k {contrast.k}"
            )
            details.append(f"hubness correction {contrast.mode} (bank {contrast.bank}, {setting})")
    elif spec.type == "language":
        details += [f"lang {spec.lang or spec.script}", f"threshold {spec.threshold:g}", spec.mode]
    elif spec.type in ("bleu", "chrf", "rougeL", "length", "repetition"):
        details += [
            f"{k} {getattr(spec, k)}"
            for k in ("lang", "start", "end", "n", "threshold")
            if getattr(spec, k, None) is not None
        ]
    elif spec.type == "reward_model":
        details += [f"model `{Path(spec.model).name}`", f"transform {spec.transform}"]
    return [name, spec.type, spec.weight, "; ".join(details)]


def _reward_section(
    exp: ExperimentConfig, arm, plans: list[StagePlan], plan: StagePlan, stages: dict[str, Any]
) -> list[str]:
    grpo = [p for p in plans[: plans.index(plan) + 1] if p.trainer == "grpo"]
    reward = exp.reward_for(arm)
    if not grpo or reward is None:
        return []
    tau_cold = stages.get(grpo[-1].key, {}).get("metrics", {}).get("tau_cold_start", {})
    rows = [_component(spec, tau_cold) for spec in reward.rewards]
    formula = " + ".join(f"{_fmt(spec.weight)}·{spec.name or spec.type}" for spec in reward.rewards)
    lines = [
        "## Reward",
        "",
        f"GRPO maximised R = {formula}"
        + (f", gated: R = {reward.gate.name or reward.gate.type} · max(sum, 0)" if reward.gate else "")
        + ".",
        "Semantic terms: R_sim = 0 if s ≤ tau else (s − tau)/(1 − tau), s the cosine of sentence embeddings.",
        "",
        _table(["term", "type", "weight", "settings"], rows),
        "",
    ]
    return lines + [kl_sentence(exp, arm, p, stages) for p in grpo] + [""]


def kl_sentence(exp: ExperimentConfig, arm, plan: StagePlan, stages: dict[str, Any]) -> str:
    """What a GRPO stage's policy was anchored to: beta and the reference TRL scored it against
    (its starting model; under LoRA that model is the adapter switched off, not a second copy)."""
    beta = exp.stage_spec(arm, plan.stage).beta
    if beta == 0:
        return f"KL penalty of stage `{plan.stage}`: none (beta 0, no reference model)."
    start = "the base model" if plan.init == "base" else f"the final model of stage `{plan.init}`"
    how = (
        "the same weights with the LoRA adapter switched off"
        if exp.model.lora is not None
        else "a frozen copy of it"
    )
    kl = stages.get(plan.key, {}).get("metrics", {}).get("kl", {})
    logged = f"; logged KL {_fmt(kl['first'])} → {_fmt(kl['last'])}" if kl else ""
    return (
        f"KL penalty of stage `{plan.stage}`: beta {_fmt(beta)} against its starting model, "
        f"{start} ({how}){logged}."
    )


def _count_lines(path: Path) -> int | None:
    if not path.is_file():
        return None
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def _rows(count: int | None, what: str) -> str:
    return f"{count} {what}" if count is not None else what


def _data_section(
    run_root: Path, exp: ExperimentConfig, arm, plan: StagePlan, stages: dict[str, Any]
) -> list[str]:
    """File names and row counts; `semrl train` keeps no data/ split, so its counts are the stage's."""
    metrics = stages.get(plan.key, {}).get("metrics", {})
    used = metrics.get("examples", metrics.get("prompts"))
    n = exp.stage_spec(arm, "sft").examples
    train, test = (
        _count_lines(run_root / "data" / "train.jsonl"),
        _count_lines(run_root / "data" / "test.jsonl"),
    )
    lines = [
        "## Data",
        "",
        f"- training file: `{Path(exp.data.train).name}`"
        + (f" ({train} rows after the split)" if train is not None else ""),
    ]
    if exp.data.test:
        lines.append(
            f"- test file: `{Path(exp.data.test).name}`" + (f" ({test} rows)" if test is not None else "")
        )
    else:
        lines.append(
            f"- test split: {_rows(test, 'rows')} held out of the training file "
            f"(test_size {_fmt(exp.data.test_size)}, seed {exp.seed})"
        )
    lines.append(
        f"- this stage trained on {ROWS[plan.rows].format(n=n)}"
        + (f": {used} rows" if used is not None else "")
    )
    return lines + ["", "Rows are not reproduced here; the counts are the run's.", ""]


def _selection_section(selection: dict[str, Any] | None) -> list[str]:
    """Which checkpoint these weights are (grpo.select) and why."""
    if not selection:
        return []
    return ["## Checkpoint selection", "", f"These weights are {describe_selection(selection)}.", ""]


def _settings_section(exp: ExperimentConfig, arm, plan: StagePlan) -> list[str]:
    spec = exp.stage_spec(arm, plan.stage)
    keys = GRPO_KEYS if plan.trainer == "grpo" else SFT_KEYS
    values = spec.model_dump()
    rows = [[key, values[key]] for key in keys if key in values and values[key] is not None]
    if exp.model.lora is not None:
        lora = exp.model.lora
        rows.append(
            ["LoRA (merged into these weights)", f"r {lora.r}, alpha {lora.alpha}, dropout {lora.dropout:g}"]
        )
    new_tokens = exp.eval.max_new_tokens or exp.decoding.max_new_tokens
    rows.append(
        [
            "evaluation decoding",
            (
                f"temperature {exp.decoding.temperature:g}, top_p {exp.decoding.top_p:g}, "
                f"max_new_tokens {new_tokens}"
            ),
        ]
    )
    return [
        "## Key settings",
        "",
        f"Stage `{plan.stage}` ({plan.trainer}):",
        "",
        _table(["setting", "value"], rows),
        "",
    ]


def _evaluation_section(
    arm, plans: list[StagePlan], plan: StagePlan, result: dict[str, Any] | None
) -> list[str]:
    lines = ["## Evaluation", ""]
    if plan != plans[-1]:
        return lines + [
            (
                f"Not evaluated on its own: semrl evaluates each arm's final model (stage "
                f"`{plans[-1].stage}` of arm `{arm.name}`)."
            ),
            "",
        ]
    if result is None:
        return lines + [
            "Not evaluated yet: `semrl eval RUN_DIR` evaluates the run and rewrites this card.",
            "",
        ]
    lines += [
        f"On {result.get('n_test')} test rows; intervals are 95% bootstrap percentiles over test items.",
        "",
        _table(
            ["metric", "value", "95% CI", "scale"],
            [[m, e.get("value"), _ci(e), e.get("scale", "")] for m, e in result.get("task", {}).items()],
        ),
        "",
    ]
    general = {b: m for b, m in result.get("general", {}).items() if b != "drift"}
    if general:
        rows = [
            [b, m, e.get("value"), _ci(e)]
            for b, metrics in general.items()
            for m, e in metrics.items()
            if isinstance(e, dict) and "ci95" in e
        ]
        lines += ["General suite:", "", _table(["benchmark", "metric", "value", "95% CI"], rows), ""]
    tax = result.get("alignment_tax", {})
    if tax:
        rows = [
            [b, m, e.get("base"), e.get("tuned"), e.get("tax"), _ci(e)]
            for b, metrics in tax.items()
            for m, e in metrics.items()
        ]
        lines += [
            "Alignment tax per benchmark (positive = general ability lost against the base model):",
            "",
            _table(["benchmark", "metric", "base", "this model", "tax", "95% CI"], rows),
            "",
        ]
    drift = result.get("drift", {})
    if drift:
        rows = [[f"{group}/{k}", v] for group, values in drift.items() for k, v in values.items()]
        lines += [
            "Drift from the base model (KL per token; NLL shift on general text):",
            "",
            _table(["measure", "value"], rows),
            "",
        ]
    return lines


def _reproduce(manifest: dict[str, Any], seed: int) -> list[str]:
    versions = manifest.get("versions", {})
    libs = ", ".join(f"{k} {v}" for k, v in versions.items() if k != "semrl")
    return [
        "## Reproduce",
        "",
        f"- semrl {versions.get('semrl', '?')}; {libs}",
        f"- seed {manifest.get('seed', seed)}; git commit `{manifest.get('git_commit')}`",
        "- every setting is in the run's `config.yaml` (`semrl_config.yaml` in an export): `semrl run "
        "config.yaml`",
        "",
    ]


def encoder_card_body(exp: ExperimentConfig, manifest: dict[str, Any], base_hub_id: str | None) -> str:
    """The reward encoder's card: from what, on which pairs (counts), how well it retrieves."""
    spec = exp.encoder
    metrics = manifest.get("stages", {}).get("encoder", {}).get("metrics", {})
    start = (
        "a tiny encoder semrl built for this run (random init)"
        if spec.base is None
        else describe_model(spec.base if spec.base != "default" else base_hub_id, base_hub_id)
    )
    pairs = (
        f"`{Path(spec.train).name}`" + (f" (test: `{Path(spec.test).name}`)" if spec.test else "")
        if spec.train
        else "the task's own training pairs (source ↔ reference), tested on its test rows"
    )
    rows = [
        [k, getattr(spec, k)] for k in ("epochs", "max_steps", "learning_rate", "batch_size", "max_length")
    ]
    rows += [
        ["steps", metrics.get("steps")],
        ["training pairs", metrics.get("pairs")],
        ["test pairs", metrics.get("test_pairs")],
        ["retrieval accuracy before", metrics.get("retrieval_accuracy_before")],
        ["retrieval accuracy after", metrics.get("retrieval_accuracy")],
    ]
    lines = [
        f"# {exp.name}: reward encoder",
        "",
        (
            f"The sentence encoder the semrl experiment `{exp.name}` trained before RL and used for its "
            "semantic reward (`encoder: run:encoder`), as the paper turned CINO into a sentence encoder. "
            f"Trained from {start} with contrastive in-batch negatives (MultipleNegativesRankingLoss) on "
            f"{pairs}. Retrieval accuracy is top-1 bitext retrieval on the held-out pairs, both directions "
            "averaged."
        ),
        "",
        _table(["setting", "value"], rows),
        "",
        "Rows are not reproduced here; the counts are the run's.",
        "",
    ]
    lines += _reproduce(manifest, exp.seed)
    lines += ["## Citation", "", "```bibtex", PAPER, "```"]
    return "\n".join(lines) + "\n"


def card_body(
    run_root: Path,
    exp: ExperimentConfig,
    manifest: dict[str, Any],
    arm,
    plans: list[StagePlan],
    plan: StagePlan,
    result: dict[str, Any] | None,
    base: str | None,
    base_hub_id: str | None,
) -> str:
    stages = manifest.get("stages", {})
    base = describe_model(base, base_hub_id)
    langs = " → ".join(x for x in (exp.task.source_lang, exp.task.target_lang) if x)
    lines = [
        f"# {exp.name} / {arm.name}: stage {plan.stage}",
        "",
        f"The `final/` model of stage `{plan.stage}` ({plan.trainer.upper()}) of arm `{arm.name}` (recipe "
        f"`{arm.recipe}`) in the semrl experiment `{exp.name}`: task {exp.task.type}"
        + (f" ({langs})" if langs else "")
        + f", trained from {base}. semrl trains language models for "
        "low-resource languages with GRPO on semantic (embedding-similarity) rewards and measures the "
        "alignment tax against supervised fine-tuning.",
        "",
        "## Recipe and stages",
        "",
        _table(
            ["stage", "trainer", "starts from", "rows", "steps", "seconds", ""],
            [
                [
                    p.stage,
                    p.trainer,
                    p.init,
                    stages.get(p.key, {})
                    .get("metrics", {})
                    .get("examples", stages.get(p.key, {}).get("metrics", {}).get("prompts", "")),
                    stages.get(p.key, {}).get("metrics", {}).get("steps", ""),
                    stages.get(p.key, {}).get("seconds", ""),
                    "**this model**" if p == plan else "",
                ]
                for p in plans
            ],
        ),
        "",
    ]
    lines += _reward_section(exp, arm, plans, plan, stages)
    lines += _data_section(run_root, exp, arm, plan, stages)
    lines += _selection_section(stages.get(plan.key, {}).get("metrics", {}).get("selection"))
    lines += _settings_section(exp, arm, plan)
    lines += _evaluation_section(arm, plans, plan, result)
    lines += _reproduce(manifest, exp.seed)
    lines += [
        "## Use",
        "",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        "",
        'tokenizer = AutoTokenizer.from_pretrained("PATH_OR_REPO_ID")',
        'model = AutoModelForCausalLM.from_pretrained("PATH_OR_REPO_ID")',
        "```",
        "",
        "## Citation",
        "",
        "The method (Su et al., 2026, arXiv:2605.14366):",
        "",
        "```bibtex",
        PAPER,
        "```",
    ]
    if arm.recipe == "train_reinforce_recover":
        lines += [
            "",
            "The train → reinforce → recover recipe (arXiv:2605.29502):",
            "",
            "```bibtex",
            SOURCE_GROUNDED,
            "```",
        ]
    return "\n".join(lines) + "\n"
