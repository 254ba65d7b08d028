"""The experiment YAML: model, task, data, rewards, stage settings, arms (recipes), seeds.

Unknown keys are errors everywhere; `key=value` overrides on the command line are applied to the
raw YAML before validation (`grpo.learning_rate=1e-6`, `arms.0.recipe=strong_sft`), so they are
checked exactly like the file. Published settings of the paper are the defaults where they exist
(see configs/paper/); every unpublished one has a documented default here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from semrl.config_files import StrictModel, describe_validation_error, load_yaml, validate
from semrl.errors import UserError
from semrl.metrics.registry import METRICS
from semrl.models.tiny import TinySpec
from semrl.names import PathName, PathText
from semrl.plugins import load_plugin
from semrl.recipes import RECIPES
from semrl.rewards.config import RewardConfig
from semrl.tasks import TASKS

# Bounds the libraries do not state, with their reasons (the libraries' own bounds are read from them in
# checks/settings.py; NaN, infinity and integers beyond int64 are refused for every field by
# config_files.StrictModel):
MAX_LEARNING_RATE = 1.0  # an AdamW step moves each weight by about lr: above 1 is divergence, not training
MAX_WEIGHT_DECAY = 1.0  # AdamW multiplies weights by 1 - lr x weight_decay: above 1 can flip their sign
MAX_SEED = 2**32 - 1  # numpy's RandomState (seeded by transformers.set_seed) takes seeds in [0, 2**32 - 1]
STEPS = "stop after this many optimizer steps; -1 (or 0): epochs decide"  # transformers: <= 0 is "not set"


class LoraSpec(StrictModel):
    r: int = Field(64, ge=1, description="rank of the adapter matrices")
    alpha: int = Field(128, ge=1, description="scaling numerator: the update is scaled by alpha / r")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="dropout on the adapter's input")
    target_modules: list[str] | str = Field(
        "all-linear",
        description="module names that get adapters; all-linear: attention and MLP, as in the paper",
    )


class TinyModelSpec(StrictModel):
    """A model semrl builds on first use: tokenizer trained on the data, random init, then SFT."""

    vocab_size: int = Field(
        512, ge=300, description="tokens of the byte-level BPE tokenizer trained on the data"
    )
    hidden_size: int = Field(64, ge=8, description="width of the hidden states")
    intermediate_size: int = Field(128, ge=8, description="width of the MLP")
    num_layers: int = Field(2, ge=1, description="transformer blocks")
    num_heads: int = Field(4, ge=1, description="attention heads (hidden_size must divide by it)")
    max_positions: int = Field(256, ge=32, description="longest sequence in tokens (the context)")
    corpus: list[str] = Field(default_factory=list, description="extra text files for the tokenizer")
    family: Literal["llama", "qwen3", "qwen2", "llama3", "gemma", "mistral"] = Field(
        "llama", description="architecture, special tokens and chat template (models/families.py)"
    )

    def tiny_spec(self, seed: int = 0):
        return TinySpec(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_layers=self.num_layers,
            num_heads=self.num_heads,
            max_positions=self.max_positions,
            seed=seed,
        )


class ModelSpec(StrictModel):
    path: PathText | None = Field(None, description="hub id or local folder")
    tiny: TinyModelSpec | None = Field(
        None, description="build a tiny random model on first use instead of `path`"
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="weights' dtype; auto: bfloat16 on a GPU that has it, float32 on CPU"
    )
    attn_implementation: str | None = Field(
        None,
        description="attention kernel of the policy (eager, sdpa, "
        "flash_attention_2, ...); default: the library's",
    )
    lora: LoraSpec | None = Field(
        None,
        description="train LoRA adapters (peft) instead of every weight; each "
        "stage's final/ is the merged model",
    )
    trust_remote_code: bool = Field(
        False, description="run the model repository's own Python code (a warning says so); off by default"
    )

    @model_validator(mode="after")
    def _one_source(self):
        if (self.path is None) == (self.tiny is None):
            raise ValueError("give exactly one of model.path or model.tiny")
        return self


class TaskSpec(StrictModel):
    type: str = Field(
        description="translate: source -> reference in another language; headline: article -> headline; "
        "generic: prompt -> reference; or a task a plugin registers"
    )
    source_lang: str | None = Field(None, description="language code of the source, e.g. zh")
    target_lang: str | None = Field(
        None,
        description="language code of the outputs, e.g. bo; picks the metrics' "
        "tokenization (default: source_lang)",
    )
    source_name: str | None = Field(None, description="language name shown in the prompt")
    target_name: str | None = Field(
        None, description="target language name shown in the prompt (default: from target_lang)"
    )
    template: str | None = Field(
        None, description="prompt template; fields {source}, {source_name}, {target_name}"
    )
    system: str | None = Field(None, description="system message, when the prompt is a chat")
    chat_template: Literal["auto", "always", "never"] = Field(
        "auto",
        description="prompts as chat messages: auto when the tokenizer has a chat template; always "
        "refuses a tokenizer without one",
    )

    @field_validator("type")
    @classmethod
    def _known_task(cls, value: str) -> str:
        """Checked when the config is read, after `plugins:` (which may register a task)."""
        if value not in TASKS:
            raise ValueError(f"unknown task type {value!r}; choose from {', '.join(TASKS)}")
        return value


class DataSpec(StrictModel):
    train: PathText = Field(description="JSONL/CSV/TSV/Parquet file or a datasets id")
    test: PathText | None = Field(
        None, description="test file; without it `test_size` of train is held out (seeded)"
    )
    format: Literal["auto", "jsonl", "csv", "tsv", "parquet", "hf"] = Field(
        "auto", description="file format; auto: from the suffix, else a datasets id"
    )
    hf_split: str = Field("train", description="split read from a datasets id")
    columns: dict[str, str] = Field(
        default_factory=dict, description="role -> column: source, reference, prompt, id"
    )
    test_size: float = Field(
        0.1, ge=0.0, description="fraction (<1) or count (>=1) held out when no test file"
    )
    few_shot: int | None = Field(None, ge=1, description="train on only k examples (few-shot transfer)")
    max_chars: int = Field(
        100_000, ge=1, description="longest text field accepted (longer is a broken export)"
    )


class DecodingSpec(StrictModel):
    temperature: float = Field(0.8, gt=0.0, description="sampling temperature of GRPO's completions")
    top_p: float = Field(0.9, gt=0.0, le=1.0, description="nucleus sampling of GRPO's completions")
    top_k: int | None = Field(
        None,
        ge=0,
        description="top-k filter of GRPO's completions (and the cold-start sample) and of sampled "
        "evaluation; unset or 0: off (transformers refuses a negative top_k)",
    )
    max_new_tokens: int = Field(
        64, ge=1, description="longest output in evaluation (greedy); GRPO uses grpo.max_completion_length"
    )


# The seven fields every stage spec shares (what train/common.py turns into Trainer arguments), each
# typed, bounded and described once here. Each spec gives its own default and keeps the field in its
# own place: a base class would move them to the front, reordering the schema and the dumped config.
Epochs = Annotated[float, Field(gt=0, description="passes over the stage's rows")]
MaxSteps = Annotated[int, Field(ge=-1, description=STEPS)]
LearningRate = Annotated[float, Field(gt=0, le=MAX_LEARNING_RATE, description="peak learning rate")]
Scheduler = Annotated[str, Field(description="learning-rate schedule (transformers SchedulerType)")]
Optimizer = Annotated[
    str | None, Field(description="optimizer (transformers OptimizerNames); default: the library's")
]
CHECKPOINT_EVERY = "checkpoint every N steps (--resume continues from the newest)"
EverySteps = Annotated[int, Field(ge=1)]  # save_steps, logging_steps: each says what it counts


class SFTSpec(StrictModel):
    epochs: Epochs = 2.0
    max_steps: MaxSteps = -1
    learning_rate: LearningRate = 2e-5
    batch_size: int = Field(32, ge=1, description="effective batch = batch_size x grad_accum x processes")
    grad_accum: int = Field(1, ge=1, description="batches per optimizer step")
    scheduler: Scheduler = "cosine"
    optim: Optimizer = None
    warmup_ratio: float = Field(0.0, ge=0.0, lt=1.0, description="share of the steps spent warming up")
    weight_decay: float = Field(
        0.0, ge=0.0, le=MAX_WEIGHT_DECAY, description="AdamW weight decay (torch's AdamW refuses < 0)"
    )
    max_length: int = Field(
        512, ge=8, description="prompt + completion tokens; longer examples are truncated"
    )
    examples: int | None = Field(None, ge=1, description="cold start: train on the first N examples only")
    save_steps: EverySteps = Field(50, description=CHECKPOINT_EVERY)
    logging_steps: EverySteps = Field(10, description="log the loss every N steps")


# the task metrics (metrics/registry.py); every one is higher-is-better
SELECT_METRICS = METRICS


class SelectSpec(StrictModel):
    """Checkpoint selection of a GRPO stage on held-out rows (train/select.py), with a metric that is
    not the training reward: the checkpoint chosen becomes the stage's final/."""

    dev: PathText | Annotated[int, Field(ge=1)] = Field(
        description="dev rows: a JSONL/CSV/TSV/Parquet file with the task's columns, or a number of the "
        "stage's own rows held out (seeded) that GRPO then does not train on"
    )
    metric: Literal[SELECT_METRICS] = Field(  # type: ignore[valid-type]
        "chrf", description="what ranks the checkpoints (as `semrl score --metrics`); higher is better"
    )
    encoder: PathText | None = Field(
        None,
        description="metric sim: its sentence encoder (folder, hub id, 'default' or 'run:encoder', as "
        "`semrl score --encoder`); default: eval.encoder",
    )
    allow_reward_metric: bool = Field(
        False,
        description="allow metric sim with the encoder of a semantic reward term of the stage (refused "
        "by default: choosing on the training reward picks the checkpoint that games it best)",
    )

    @field_validator("dev", mode="before")
    @classmethod
    def _dev(cls, value: Any) -> Any:
        if isinstance(value, (bool, float)) or (isinstance(value, int) and value < 1):
            raise ValueError(
                f"{value!r}: give a file of dev rows or a number (1 or more) of rows to hold out"
            )
        return value

    @model_validator(mode="after")
    def _encoder_for_sim(self):
        if self.encoder is not None and self.metric != "sim":
            raise ValueError(f"encoder is read by metric sim only; metric is {self.metric}")
        return self


class GRPOSpec(StrictModel):
    epochs: Epochs = Field(1.0, description="passes over the stage's prompts")
    max_steps: MaxSteps = -1
    learning_rate: LearningRate = 5e-7
    num_generations: int = Field(8, ge=2, description="group size")
    prompts_per_step: int = Field(
        4, ge=1, description="per process; batch = prompts x generations completions"
    )
    grad_accum: int = Field(1, ge=1, description="batches per optimizer step")
    beta: float = Field(
        0.0,
        ge=0.0,
        description="KL coefficient (unpublished; DeepSeekMath's GRPO used 0.04) against the stage's "
        "starting model: under LoRA that model with the adapter off, else a frozen copy in memory; "
        "0 loads no reference model",
    )
    loss_type: str = Field("dapo", description="TRL loss: grpo, dr_grpo, dapo, bnpo, ...")
    epsilon: float = Field(0.2, gt=0.0, description="clip range (unpublished)")
    scale_rewards: str = Field("group", description="group, batch or none")
    max_completion_length: int = Field(64, ge=1, description="unpublished")
    temperature: float | None = Field(
        None, gt=0.0, description="default: decoding.temperature (> 0: it divides the logits)"
    )
    top_p: float | None = Field(
        None, gt=0.0, le=1.0, description="default: decoding.top_p; a probability mass in (0, 1]"
    )
    mask_truncated_completions: bool = Field(
        False, description="leave completions cut by max_completion_length out of the loss (TRL's setting)"
    )
    scheduler: Scheduler = "constant"
    optim: Optimizer = None
    save_steps: EverySteps = Field(20, description=CHECKPOINT_EVERY)
    logging_steps: EverySteps = Field(5, description="log rewards, loss and completions every N steps")
    # Generation with vLLM (optional extra `semrl[vllm]`, CUDA only), named as TRL's GRPOConfig names them.
    # None = not passed to GRPOConfig: TRL's own default applies (use_vllm false).
    use_vllm: bool | None = Field(None, description="generate with vLLM instead of model.generate")
    vllm_mode: Literal["colocate", "server"] | None = Field(
        None,
        description="colocate (TRL's default): vLLM shares each training GPU; "
        "server: a `trl vllm-serve` process",
    )
    vllm_gpu_memory_utilization: float | None = Field(
        None, gt=0.0, le=1.0, description="colocate: GPU share vLLM takes"
    )
    vllm_tensor_parallel_size: int | None = Field(None, ge=1, description="colocate: GPUs per vLLM engine")
    vllm_enable_sleep_mode: bool | None = Field(
        None, description="colocate: free vLLM's memory during the update"
    )
    vllm_max_model_length: int | None = Field(None, ge=1, description="colocate: context vLLM reserves")
    vllm_server_base_url: str | None = Field(
        None, description="server: e.g. http://host:8000 (overrides host/port)"
    )
    vllm_server_host: str | None = Field(None, description="server: its address (TRL's default 0.0.0.0)")
    vllm_server_port: int | None = Field(
        None, ge=1, le=65535, description="server: its port (TRL's default 8000)"
    )
    vllm_server_timeout: float | None = Field(
        None, gt=0.0, description="server: seconds to wait for it to come up"
    )

    # More of TRL's GRPOConfig under its own names; None = not passed: TRL's own default applies.
    epsilon_high: float | None = Field(
        None, gt=0.0, description="upper clip range (DAPO's clip-higher); default: epsilon"
    )
    multi_objective_aggregation: str | None = Field(
        None,
        description="sum_then_normalize (TRL's default) or normalize_then_sum: each reward term is "
        "normalised within its group before the weighted sum, so a 0/1 language term does not drown a "
        "continuous similarity; semrl then hands TRL one reward function per term and their weights as "
        "TRL's reward_weights (not with a gate)",
    )
    generation_batch_size: int | None = Field(
        None,
        ge=1,
        description="completions generated at once, over all processes; a multiple of the global batch",
    )
    steps_per_generation: int | None = Field(
        None, ge=1, description="optimizer steps per generation batch (the other way to set it)"
    )
    log_completions: bool | None = Field(
        None,
        description="semrl writes the latest generation batch (prompt, "
        "completion, each reward term, advantage) to completions.jsonl at "
        "every logging step unless false; true: TRL also prints it and "
        "sends it to wandb (TRL's log_completions)",
    )
    num_completions_to_print: int | None = Field(
        None, ge=1, description="log_completions: rows per logging step (default: the whole generation batch)"
    )
    select: SelectSpec | None = Field(
        None,
        description="choose the checkpoint on dev rows with a metric that is not the reward; the chosen "
        "one becomes final/ (see Guides: your data)",
    )

    TRL_PASS_THROUGH: ClassVar[tuple[str, ...]] = (
        "epsilon_high",
        "multi_objective_aggregation",
        "generation_batch_size",
        "steps_per_generation",
        "log_completions",
        "num_completions_to_print",
    )

    def vllm_kwargs(self) -> dict[str, Any]:
        """The vLLM settings given (not None), for GRPOConfig."""
        return {
            name: value
            for name in type(self).model_fields
            if name.startswith(("use_vllm", "vllm_")) and (value := getattr(self, name)) is not None
        }

    def trl_kwargs(self) -> dict[str, Any]:
        """The other GRPOConfig settings given (not None), under TRL's names."""
        return {name: value for name in self.TRL_PASS_THROUGH if (value := getattr(self, name)) is not None}


class RMSpec(StrictModel):
    train: PathText | None = Field(None, description="preference pairs: prompt, chosen, rejected")
    test: PathText | None = Field(
        None, description="held-out pairs; without it `test_size` of train is held out"
    )
    columns: dict[str, str] = Field(
        default_factory=dict, description="role -> column: prompt, chosen, rejected"
    )
    test_size: float = Field(
        0.1, ge=0.0, description="fraction (<1) or count (>=1) held out when no test file"
    )
    model: PathText | None = Field(None, description="base for the RM; default: the experiment model")
    epochs: Epochs = Field(1.0, description="passes over the training pairs")
    max_steps: MaxSteps = -1
    learning_rate: LearningRate = 1e-5
    batch_size: int = Field(8, ge=1, description="pairs per batch, per process")
    scheduler: Scheduler = "cosine"
    optim: Optimizer = None
    max_length: int = Field(512, ge=8, description="prompt + response tokens; longer pairs are truncated")
    save_steps: EverySteps = Field(50, description=CHECKPOINT_EVERY)
    logging_steps: EverySteps = Field(10, description="log the loss every N steps")


class EncoderSpec(StrictModel):
    """The sentence encoder a run trains when a reward names `run:encoder` (its pairs and steps)."""

    train: PathText | None = Field(
        None,
        description="pairs: anchor, positive (parallel or paraphrase); default: "
        "the task's own source-reference training pairs",
    )
    test: PathText | None = Field(
        None, description="held-out pairs; without it `test_size` of train is held out"
    )
    columns: dict[str, str] = Field(default_factory=dict, description="role -> column: anchor, positive")
    test_size: float = Field(
        0.2, ge=0.0, description="fraction (<1) or count (>=1) held out when no test file"
    )
    base: PathText | None = Field(
        None, description="pretrained encoder (folder, id, 'default'); none = tiny from scratch"
    )
    tiny: TinyModelSpec = Field(
        default_factory=lambda: TinyModelSpec(hidden_size=64, num_layers=2),
        description="the encoder built from scratch when `base` is not given",
    )
    epochs: Epochs = Field(1.0, description="passes over the training pairs")
    max_steps: MaxSteps = -1
    learning_rate: LearningRate = 5e-5
    batch_size: int = Field(32, ge=2, description="in-batch negatives: bigger is harder")
    max_length: int = Field(128, ge=8, description="tokens per text; longer texts are truncated")
    save_steps: EverySteps = Field(50, description=CHECKPOINT_EVERY)
    logging_steps: EverySteps = Field(10, description="log the loss every N steps")


class JudgeSpec(StrictModel):
    """Who judges pairwise preference: a reward model, a local causal LM prompted as judge, or a
    Python callable `module:function` (e.g. the sandbox oracle) taking (prompt, a, b, **row)."""

    type: Literal["reward_model", "lm", "callable"] = Field(
        description="reward_model: higher score wins; lm: a causal LM asked which answer is better; "
        "callable: your function"
    )
    model: PathText | None = Field(None, description="reward_model, lm: the judge's folder or hub id")
    callable: str | None = Field(
        None,
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
        description="callable: `module:function`, imported at run time (opt-in)",
    )
    template: str | None = Field(None, description="lm judge prompt; fields {prompt}, {a}, {b}")
    mode: Literal["logprob", "generate"] = Field(
        "logprob",
        description="lm judge: compare the likelihood of answering A vs B, or generate an answer and read it",
    )
    max_new_tokens: int = Field(8, ge=1, description="lm judge, mode generate: length of its answer")

    @model_validator(mode="after")
    def _needs(self):
        if self.type in ("reward_model", "lm") and not self.model:
            raise ValueError(f"a {self.type} judge needs `model:`")
        if self.type == "callable" and not self.callable:
            raise ValueError("a callable judge needs `callable: module:function`")
        return self


class EvalSpec(StrictModel):
    enabled: bool = Field(True, description="`semrl run` evaluates every arm after training")
    suite: PathText | None = Field(None, description="general-suite YAML (alignment tax, drift)")
    encoder: PathText = Field(
        "default", description="encoder for the similarity metric; 'run:encoder' allowed"
    )
    metrics: list[str] | None = Field(
        None, description="task metrics; default by task type (a plugin may register more)"
    )
    metric_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="settings a metric reads, by metric name, e.g. {oracle: {world: path}} (plugin "
        "metrics; each checks its own)",
    )
    batch_size: int = Field(16, ge=1, description="prompts generated at once")
    max_new_tokens: int | None = Field(None, ge=1, description="default: decoding.max_new_tokens")
    resamples: int = Field(1000, ge=10, description="bootstrap resamples for 95% intervals")
    curve_every: int | None = Field(
        None, ge=1, description="also evaluate checkpoints every N steps (trade-off curves)"
    )
    curve_arms: list[str] | None = Field(
        None, description="arms that get a checkpoint curve (default: every arm)"
    )
    judge: JudgeSpec | None = Field(None, description="who judges the pairs in `compare`")
    compare: list[list[str]] = Field(
        default_factory=list, description="arm pairs to judge, e.g. [[semantic_rl, strong_sft]]"
    )
    lang_threshold: float = Field(
        0.95, ge=0.0, le=1.0, description="lang metric: share of letters in the target script an output needs"
    )


class ArmSpec(StrictModel):
    name: PathName = Field(
        pattern=r"^[A-Za-z0-9_.-]+$", description="the arm's folder and its name in the report"
    )
    recipe: Literal[tuple(RECIPES)] = Field(  # type: ignore[valid-type]  # the names, in the table's order
        description="the stages the arm trains (see Concepts: recipes and arms)"
    )
    sft: dict[str, Any] = Field(default_factory=dict, description="overrides of the top-level sft settings")
    grpo: dict[str, Any] = Field(default_factory=dict, description="overrides of the top-level grpo settings")
    recover: dict[str, Any] = Field(
        default_factory=dict, description="overrides of the top-level recover settings"
    )
    rewards: RewardConfig | None = Field(None, description="this arm's reward (default: the top-level one)")


class ExperimentConfig(StrictModel):
    """An experiment YAML: the base model, the task and its data, the rewards and the arms to train."""

    name: PathName = Field(
        pattern=r"^[A-Za-z0-9_.-]+$", description="the run's name; its folder is output_dir/name"
    )
    seed: int = Field(
        0, ge=0, le=MAX_SEED, description="seeds the split, sampling, initialisation and every drawn sample"
    )
    plugins: list[str] = Field(
        default_factory=list,
        description="your own code, imported first: modules (installed or on PYTHONPATH) or .py files "
        "(relative to this file) that register metrics or task types (docs: extending semrl)",
    )
    output_dir: str = Field("runs", description="parent folder of the run when --out is not given")
    report_to: Literal["none", "tensorboard", "wandb"] = Field(
        "none", description="training curves to TensorBoard or wandb (the `logging` extra)"
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA when available, else CPU")
    parallel: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        1,
        description="`semrl run`: train up to this many independent stages at once, each in its own process "
        "(auto: one per usable CPU core; 1 on a GPU); not part of a run's identity, so --resume "
        "may change it",
    )
    model: ModelSpec = Field(
        description="the base model: a hub id or folder, or a tiny one built on first use"
    )
    task: TaskSpec = Field(description="what the model is trained to do, and its prompt")
    data: DataSpec = Field(description="the task's rows and how they are split")
    rewards: RewardConfig | None = Field(None, description="the GRPO reward (arms may give their own)")
    decoding: DecodingSpec = Field(default_factory=DecodingSpec, description="sampling and output length")
    sft: SFTSpec = Field(default_factory=SFTSpec, description="SFT stages: cold start, strong SFT, continue")
    grpo: GRPOSpec = Field(default_factory=GRPOSpec, description="GRPO stages")
    recover: SFTSpec = Field(
        default_factory=lambda: SFTSpec(epochs=1.0), description="the recovery SFT of train_reinforce_recover"
    )
    rm: RMSpec = Field(
        default_factory=RMSpec, description="`semrl train rm`: a reward model from preference pairs"
    )
    encoder: EncoderSpec = Field(
        default_factory=EncoderSpec,
        description="the sentence encoder trained when a reward names encoder: run:encoder",
    )
    eval: EvalSpec = Field(default_factory=EvalSpec, description="evaluation after training")
    arms: list[ArmSpec] = Field(
        default_factory=list,
        description="what `semrl run` trains: each arm a recipe, with its own overrides and rewards",
    )

    @field_validator("plugins")
    @classmethod
    def _import_plugins(cls, names: list[str]) -> list[str]:
        """Imported while the config is read, so `eval.metrics` may name what they register."""
        for name in names:
            try:
                load_plugin(name)
            except (ImportError, SyntaxError, ValueError) as exc:  # not found, not Python, a name taken
                raise ValueError(f"{name}: cannot import it: {type(exc).__name__}: {exc}") from None
        return names

    @field_validator("parallel", mode="before")
    @classmethod
    def _parallel(cls, value: Any) -> Any:
        if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            return value
        raise ValueError(f"{value!r}: give a number of worker processes (1 or more) or auto")

    @model_validator(mode="after")
    def _arms_resolve(self):
        names = [arm.name for arm in self.arms]
        if len(set(names)) != len(names):
            raise ValueError("arm names must be unique")
        for arm in self.arms:
            for stage in ("sft", "grpo", "recover"):
                self.stage_spec(arm, stage)  # raises on a bad override
            if RECIPES[arm.recipe].needs_rewards and self.reward_for(arm) is None:
                raise ValueError(f"arm {arm.name!r} ({arm.recipe}) trains with GRPO: give `rewards:`")
        if "base" in names:
            raise ValueError("'base' is reserved for the untuned model; rename the arm")
        for pair in self.eval.compare:
            if len(pair) != 2 or any(name not in names + ["base"] for name in pair):
                raise ValueError(f"eval.compare: {pair} must name two arms (or base)")
        for name in self.eval.curve_arms or []:
            if name not in names:
                raise ValueError(
                    f"eval.curve_arms: {name!r} is not an arm (arms: {', '.join(names) or 'none'})"
                )
        if self.eval.compare and self.eval.judge is None:
            raise ValueError("eval.compare needs eval.judge")
        return self

    def stage_spec(self, arm: ArmSpec, stage: str):
        """Top-level settings of `stage` with the arm's overrides applied and validated (the
        `continue` stage of sft_continue is SFT and takes the sft settings)."""
        stage = "sft" if stage == "continue" else stage
        base = getattr(self, stage)
        overrides = getattr(arm, stage)
        if not overrides:
            return base
        try:
            return type(base).model_validate({**base.model_dump(), **overrides})
        except (ValidationError, UserError, TypeError) as exc:  # a refusal: name the arm and stage
            detail = describe_validation_error(exc) if isinstance(exc, ValidationError) else str(exc)
            raise ValueError(f"arms.{arm.name}.{stage}: {detail}") from None

    def arm(self, name: str) -> ArmSpec | None:
        """The arm called `name` (names are unique), or None: `semrl train STAGE` plans its one
        stage under the name `train`, which is an arm only if the config has one of that name."""
        return next((arm for arm in self.arms if arm.name == name), None)

    def reward_for(self, arm: ArmSpec | None) -> RewardConfig | None:
        return (arm.rewards if arm is not None and arm.rewards is not None else None) or self.rewards

    def reward_configs(self) -> list[tuple[str, RewardConfig]]:
        """(field, config) of every reward the file writes: the top level's, then each arm's own;
        the checks walk them all, so a bad reward in an arm is named by its own field."""
        configs = [("rewards", self.rewards)] + [
            (f"arms.{arm.name}.rewards", arm.rewards) for arm in self.arms
        ]
        return [(where, config) for where, config in configs if config is not None]


def _set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node: Any = data
    for key in keys[:-1]:
        if isinstance(node, list):
            node = node[int(key)]
            continue
        if key not in node or node[key] is None:
            node[key] = {}
        node = node[key]
    last = keys[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """`a.b=3` style overrides; values are parsed as YAML (numbers, booleans, lists)."""
    for item in overrides:
        if "=" not in item:
            raise UserError(f"override {item!r}: expected key=value (e.g. grpo.learning_rate=1e-6)")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
            _set_path(data, key.strip(), value)
        except (yaml.YAMLError, ValueError, IndexError, TypeError, AttributeError) as exc:
            raise UserError(f"override {item!r}: cannot apply ({exc})") from None
    return data


FILE_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet", ".yaml", ".yml", ".txt")


def resolve_path(value: Any, base: Path) -> Any:
    """A relative path in a config, made absolute against the config's folder when it exists or names
    a file or folder (so "not found" shows where we looked); anything else may be a hub id."""
    if not isinstance(value, str) or not value or Path(value).is_absolute():
        return value
    if (
        (base / value).exists()
        or Path(value).suffix.lower() in FILE_SUFFIXES
        or value.startswith(("./", "../"))
    ):
        try:
            return str((base / value).resolve())
        except (OSError, RuntimeError):  # a symlink loop: preflight names it (checks/lookups.py)
            return str(base / value)
    return value


def resolve_relative_paths(data: dict[str, Any], base: Path) -> None:
    """Data and model paths in a config are relative to the config file, like imports in a module."""

    def listed(value: Any) -> list[Any]:
        return value if isinstance(value, list) else []  # anything else is reported by validation

    def fix(section: dict[str, Any] | None, keys: tuple[str, ...]) -> None:
        if not isinstance(section, dict):
            return
        for key in keys:
            if key in section:
                section[key] = resolve_path(section[key], base)

    if isinstance(data.get("plugins"), list):
        data["plugins"] = [
            str((base / name).resolve()) if isinstance(name, str) and name.endswith(".py") else name
            for name in data["plugins"]
        ]
    fix(data.get("data"), ("train", "test"))
    fix(data.get("model"), ("path",))
    fix(data.get("rm"), ("train", "test", "model"))
    fix(data.get("encoder"), ("train", "test", "base"))
    fix(data.get("eval"), ("suite", "encoder"))
    for grpo in [data.get("grpo")] + [
        arm.get("grpo") for arm in listed(data.get("arms")) if isinstance(arm, dict)
    ]:
        if isinstance(grpo, dict):
            fix(grpo.get("select"), ("dev", "encoder"))
    if isinstance(data.get("eval"), dict):
        fix(data["eval"].get("judge"), ("model",))

    for rewards in [data.get("rewards")] + [
        arm.get("rewards") for arm in listed(data.get("arms")) if isinstance(arm, dict)
    ]:
        if isinstance(rewards, dict):
            for component in listed(rewards.get("rewards")) + [rewards.get("gate")]:
                fix(component, ("encoder", "model", "reference"))


def load_experiment(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """An experiment YAML with `key=value` overrides applied and its paths made relative to the file."""
    data = load_yaml(path)
    apply_overrides(data, overrides or [])
    resolve_relative_paths(data, Path(path).resolve().parent)
    return validate(ExperimentConfig, data, path)
