"""LoRA fine-tuning of the lab's small model, measured before and after.

The pieces of a supervised fine-tuning (SFT) run, each small enough to read:

* **Data**: :func:`validate_examples` refuses malformed chat examples before any
  work starts; :func:`encode_chat` applies the model's chat template and masks the
  loss on the prompt (labels are ``-100`` everywhere except the final assistant reply
  and its end-of-turn token); :func:`encode_dataset` does a whole split and refuses
  sequences over the length limit, naming the example.
* **Model**: :class:`LoraTrainConfig` holds CPU-friendly defaults; :func:`attach_lora`
  wraps a *copy* of the base model with peft's LoRA layers (the shared model from
  :func:`reference.hf.load_hf_model` is never mutated); :func:`pick_device` chooses
  CUDA when present, so the same code runs on a GPU unchanged.
* **Training**: :func:`train_lora`, a plain torch loop with gradient accumulation,
  warm-up then linear decay, tqdm progress, validation loss and early stopping;
  :func:`rehearsal_examples` turns general prompts into examples answered by the base
  model itself, mixed in (``rehearsal=``) so the adapter does not forget plain answers.
* **Evaluation**: :func:`generate_replies` (batched greedy decoding),
  :func:`score_reply` / :func:`task_metrics` for the cited-JSON task and
  :func:`sanity_pass_rate` for the general prompts that catch collapse.
* **Adapters**: :func:`save_adapter`, :func:`load_adapter` (refuses an adapter made
  for another base model before touching the weights), :func:`merge_adapter`.
* **Intents**: :class:`EmbeddingIntentClassifier`, logistic regression on sentence
  embeddings: the "small fine-tuned model" of the cost comparison.

Example:
    >>> cfg = LoraTrainConfig(rank=4, max_steps=3)
    >>> (cfg.rank, cfg.alpha, cfg.scaling)
    (4, 8, 2.0)
"""

from __future__ import annotations

import copy
import json
import math
import random
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reference.config import LOCAL_CHAT_MODEL
from reference.errors import DataFileError, InputError, InputTooLargeError

__all__ = [
    "ADAPTER_META_FILE", "ATTENTION_TARGETS", "ALL_LINEAR_TARGETS", "AdapterMismatchError",
    "EmbeddingIntentClassifier", "Encoded", "FAST_CONFIG", "FULL_CONFIG", "FinetuneDataError", "Generation",
    "LoraTrainConfig", "ReplyScore", "SequenceTooLongError", "TrainResult", "attach_lora", "base_fingerprint",
    "check_adapter", "collate", "config_dict", "count_parameters", "demo_adapter", "encode_chat",
    "encode_dataset", "evaluate_loss", "fast_subset", "generate_replies", "load_adapter", "lora_config",
    "lora_parameter_count", "merge_adapter", "pick_device", "rehearsal_examples", "sanity_pass_rate",
    "save_adapter", "score_reply", "serve_name", "task_metrics", "train_lora", "validate_examples",
]

#: Attention projections of the Llama architecture (SmolLM2 is a Llama).
ATTENTION_TARGETS: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
#: Every linear layer of a Llama block: attention plus the MLP.
ALL_LINEAR_TARGETS: tuple[str, ...] = ATTENTION_TARGETS + ("gate_proj", "up_proj", "down_proj")
#: File written next to peft's own files, naming the base model the adapter belongs to.
ADAPTER_META_FILE = "lab_adapter.json"
#: Label value the loss ignores (PyTorch's cross-entropy default).
IGNORE_INDEX = -100
_ROLES = {"system", "user", "assistant"}


class FinetuneDataError(DataFileError):
    """A training example is malformed or the dataset has the wrong shape."""


class SequenceTooLongError(InputTooLargeError):
    """An encoded example is longer than the configured ``max_length``."""


class AdapterMismatchError(InputError):
    """An adapter was trained for a different base model (or is not an adapter at all)."""


# ------------------------------------------------------------------------------ config
@dataclass(frozen=True)
class LoraTrainConfig:
    """Hyper-parameters of a LoRA run, with defaults that suit a 135M model on a CPU.

    Attributes:
        rank: LoRA rank ``r`` (size of the low-rank update).
        alpha: LoRA alpha; the update is scaled by ``alpha / rank``. ``None`` means ``2 * rank``.
        dropout: dropout on the LoRA input during training.
        target_modules: names of the linear layers that get adapters.
        max_length: longest tokenised example accepted (prompt + reply + end token).
        batch_size: examples per forward pass.
        grad_accum: forward passes per optimizer step (effective batch = batch_size * grad_accum).
        learning_rate: peak AdamW learning rate (LoRA tolerates far higher rates than full tuning).
        epochs: passes over the training set (ignored when ``max_steps`` is set).
        max_steps: optimizer steps to run; ``None`` derives it from ``epochs``.
        warmup_steps: steps of linear learning-rate warm-up, then linear decay to zero.
        eval_every: optimizer steps between validation-loss evaluations.
        patience: evaluations without improvement before stopping early.
        min_delta: improvement in validation loss that counts as one.
        seed: seeds LoRA initialisation, dropout and the data order.
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"`` or ``"cuda"``.
        precision: ``"auto"`` (bf16 autocast on a GPU that supports it, else float32),
            ``"float32"`` or ``"bf16"``.
    """

    rank: int = 8
    alpha: int | None = None
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ATTENTION_TARGETS
    max_length: int = 384
    batch_size: int = 4
    grad_accum: int = 1
    learning_rate: float = 1e-3
    epochs: float = 1.0
    max_steps: int | None = None
    warmup_steps: int = 4
    eval_every: int = 10
    patience: int = 3
    min_delta: float = 0.0
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"

    def __post_init__(self) -> None:
        if self.alpha is None:
            object.__setattr__(self, "alpha", 2 * self.rank)
        object.__setattr__(self, "target_modules", tuple(self.target_modules))
        problems = []
        if self.rank < 1:
            problems.append(f"rank must be >= 1, got {self.rank}")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout must be in [0, 1), got {self.dropout}")
        if not self.target_modules:
            problems.append("target_modules is empty: name at least one linear layer, e.g. 'q_proj'")
        for name in ("max_length", "batch_size", "grad_accum", "eval_every", "patience"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.learning_rate <= 0:
            problems.append(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.max_steps is not None and self.max_steps < 1:
            problems.append(f"max_steps must be >= 1 or None, got {self.max_steps}")
        if self.max_steps is None and self.epochs <= 0:
            problems.append(f"epochs must be > 0, got {self.epochs}")
        if self.device not in ("auto", "cpu", "cuda"):
            problems.append(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        if self.precision not in ("auto", "float32", "bf16"):
            problems.append(f"precision must be 'auto', 'float32' or 'bf16', got {self.precision!r}")
        if problems:
            raise InputError("bad LoRA configuration: " + "; ".join(problems))

    @property
    def scaling(self) -> float:
        """The factor ``alpha / rank`` applied to the LoRA update."""
        return float(self.alpha) / self.rank  # type: ignore[arg-type]

    @property
    def effective_batch(self) -> int:
        """Examples per optimizer step."""
        return self.batch_size * self.grad_accum


def pick_device(preference: str = "auto") -> Any:
    """Return the torch device to train on: CUDA when available (``auto``), else the CPU.

    Example:
        >>> str(pick_device("cpu"))
        'cpu'
    """
    import torch  # noqa: PLC0415

    if preference == "cpu":
        return torch.device("cpu")
    if preference == "cuda":
        if not torch.cuda.is_available():
            raise InputError("device='cuda' was asked for, but torch sees no CUDA GPU; use 'auto' or 'cpu'")
        return torch.device("cuda")
    if preference != "auto":
        raise InputError(f"device must be 'auto', 'cpu' or 'cuda', got {preference!r}")
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _autocast_dtype(device: Any, precision: str) -> Any:
    """bf16 autocast only on a CUDA GPU that supports it; the CPU trains in float32."""
    import torch  # noqa: PLC0415

    if device.type != "cuda" or precision == "float32":
        if precision == "bf16" and device.type != "cuda":
            raise InputError("precision='bf16' needs a CUDA GPU here; on a CPU use 'float32' (or 'auto')")
        return None
    if torch.cuda.is_bf16_supported():
        return torch.bfloat16
    if precision == "bf16":
        raise InputError("this GPU does not support bf16; use precision='float32' (or 'auto')")
    return None


# -------------------------------------------------------------------------------- data
def _raw_id(example: Any) -> Any:
    return example.get("id") if isinstance(example, dict) else getattr(example, "id", None)


def _example_id(example: Any, index: int) -> str:
    ident = _raw_id(example)
    return f"example {index} ({ident})" if ident else f"example {index}"


def _as_messages(example: Any, where: str, *, require_assistant: bool = True) -> list[dict[str, Any]]:
    """Pull the message list out of a ChatExample, a {"messages": [...]} dict or a bare list.

    With ``require_assistant=False`` it checks a prompt instead: it must end with a user turn.
    """
    if hasattr(example, "messages") and not isinstance(example, dict):
        raw = example.messages
    elif isinstance(example, dict):
        if "messages" not in example:
            keys = sorted(example)[:6]
            raise FinetuneDataError(
                f"{where} has keys {keys} but no 'messages': expected the chat format "
                "{'messages': [{'role': 'system'|'user'|'assistant', 'content': ...}, ...]}"
            )
        raw = example["messages"]
    elif isinstance(example, list):
        raw = example
    else:
        raise FinetuneDataError(
            f"{where} is {type(example).__name__}; expected a dict with 'messages', a ChatExample or a list"
        )
    if not isinstance(raw, list) or not raw:
        raise FinetuneDataError(f"{where} has no messages")
    out = []
    for j, msg in enumerate(raw):
        if hasattr(msg, "model_dump"):
            msg = msg.model_dump()
        if not isinstance(msg, dict):
            raise FinetuneDataError(f"{where}: message {j} is {type(msg).__name__}, expected a dict")
        role, content = msg.get("role"), msg.get("content")
        if role not in _ROLES:
            raise FinetuneDataError(f"{where}: message {j} has role {role!r}; use one of {sorted(_ROLES)}")
        if not isinstance(content, str) or not content.strip():
            raise FinetuneDataError(f"{where}: message {j} ({role}) has empty or non-text content")
        out.append({"role": role, "content": content})
    if not require_assistant:
        if out[-1]["role"] != "user":
            raise FinetuneDataError(f"{where}: a prompt must end with a user message, "
                                    f"got role {out[-1]['role']!r}")
        return out
    if out[-1]["role"] != "assistant":
        raise FinetuneDataError(f"{where}: the last message must be the assistant reply to learn, "
                                f"got role {out[-1]['role']!r}")
    if not any(m["role"] == "user" for m in out[:-1]):
        raise FinetuneDataError(f"{where}: no user message before the assistant reply")
    return out


def validate_examples(
    examples: Iterable[Any], *, reply_check: Callable[[str], Any] | None = None,
) -> list[list[dict[str, Any]]]:
    """Check every example and return their message lists (all problems found before training).

    Args:
        examples: ChatExample records, ``{"messages": [...]}`` dicts or message lists.
        reply_check: optional validator of each assistant reply (for example
            :func:`reference.datasets.sets.parse_cited_answer`); anything it raises is
            reported as a schema problem naming the example.

    Returns:
        One list of ``{"role", "content"}`` dicts per example.

    Raises:
        FinetuneDataError: the dataset is empty, or an example is malformed.

    Example:
        >>> validate_examples([{"messages": [{"role": "user", "content": "hi"},
        ...                                  {"role": "assistant", "content": "hello"}]}])[0][1]["content"]
        'hello'
    """
    if isinstance(examples, (str, bytes, dict)):
        raise FinetuneDataError("examples must be a list of chat examples, not a single string or dict")
    items = list(examples)
    if not items:
        raise FinetuneDataError("the dataset is empty: nothing to train on")
    out = []
    for i, example in enumerate(items):
        where = _example_id(example, i)
        messages = _as_messages(example, where)
        if reply_check is not None:
            try:
                reply_check(messages[-1]["content"])
            except Exception as exc:  # noqa: BLE001 - any validator failure is a data problem
                raise FinetuneDataError(
                    f"{where}: the assistant reply does not match the target schema: {exc}") from exc
        out.append(messages)
    return out


@dataclass(frozen=True)
class Encoded:
    """One tokenised training example.

    Attributes:
        input_ids: prompt tokens, then reply tokens, then the end-of-turn token.
        labels: ``-100`` on prompt tokens, else equal to ``input_ids``.
        example_id: where it came from (for error messages).
    """

    input_ids: list[int]
    labels: list[int]
    example_id: str = ""

    @property
    def n_prompt(self) -> int:
        """Tokens the loss ignores."""
        return sum(1 for x in self.labels if x == IGNORE_INDEX)

    @property
    def n_target(self) -> int:
        """Tokens the loss is computed on."""
        return len(self.labels) - self.n_prompt


def end_of_turn_id(tokenizer: Any) -> int:
    """The token that closes an assistant turn (``<|im_end|>`` for SmolLM2)."""
    for token in ("<|im_end|>", "<|eot_id|>", "<|end|>"):
        tid = tokenizer.convert_tokens_to_ids(token)
        if isinstance(tid, int) and tid != tokenizer.unk_token_id and tid is not None:
            return tid
    if tokenizer.eos_token_id is None:
        raise InputError("the tokenizer has no end-of-turn or eos token to finish the reply with")
    return int(tokenizer.eos_token_id)


def render_prompt(messages: Sequence[dict[str, Any]], tokenizer: Any) -> str:
    """The text the model sees before it starts the reply (chat template + generation prompt)."""
    return tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)


def encode_chat(
    messages: Sequence[dict[str, Any]], tokenizer: Any, *, max_length: int | None = None,
    example_id: str = "",
) -> Encoded:
    """Tokenise one conversation for SFT, with the loss masked on everything but the reply.

    The prompt is every message but the last, rendered with the chat template and the
    generation prompt (``<|im_start|>assistant\\n``); the target is the last (assistant)
    message followed by the end-of-turn token, so the model learns to stop.

    Raises:
        SequenceTooLongError: the result is longer than ``max_length`` tokens.

    Example:
        >>> enc = encode_chat(msgs, tokenizer)                       # doctest: +SKIP
        >>> enc.labels[:3]                                           # doctest: +SKIP
        [-100, -100, -100]
    """
    msgs = _as_messages(list(messages), example_id or "conversation")
    prompt_ids = tokenizer(render_prompt(msgs[:-1], tokenizer), add_special_tokens=False)["input_ids"]
    reply_ids = tokenizer(msgs[-1]["content"], add_special_tokens=False)["input_ids"]
    eot = end_of_turn_id(tokenizer)
    input_ids = list(prompt_ids) + list(reply_ids) + [eot]
    labels = [IGNORE_INDEX] * len(prompt_ids) + list(reply_ids) + [eot]
    if max_length is not None and len(input_ids) > max_length:
        raise SequenceTooLongError(
            f"{example_id or 'example'} is {len(input_ids)} tokens ({len(prompt_ids)} prompt + "
            f"{len(reply_ids) + 1} reply), over max_length={max_length}: shorten it or raise max_length"
        )
    return Encoded(input_ids, labels, example_id)


def encode_dataset(
    examples: Iterable[Any], tokenizer: Any, *, max_length: int,
    reply_check: Callable[[str], Any] | None = None,
) -> list[Encoded]:
    """Validate and tokenise a whole split; every problem is raised before training starts.

    Raises:
        FinetuneDataError: malformed examples or replies that fail ``reply_check``.
        SequenceTooLongError: examples over ``max_length`` (all of them are listed).
    """
    items = list(examples) if not isinstance(examples, (str, bytes, dict)) else examples
    message_lists = validate_examples(items, reply_check=reply_check)
    encoded, too_long = [], []
    for i, (example, msgs) in enumerate(zip(items, message_lists)):
        enc = encode_chat(msgs, tokenizer, example_id=_example_id(example, i))
        if len(enc.input_ids) > max_length:
            too_long.append(f"{enc.example_id}: {len(enc.input_ids)} tokens")
        encoded.append(enc)
    if too_long:
        shown = "; ".join(too_long[:5]) + (f"; and {len(too_long) - 5} more" if len(too_long) > 5 else "")
        raise SequenceTooLongError(
            f"{len(too_long)} example(s) exceed max_length={max_length}: {shown}. "
            "Shorten them, drop them explicitly, or raise max_length (memory and time grow with it)."
        )
    return encoded


def collate(batch: Sequence[Encoded], pad_id: int) -> dict[str, Any]:
    """Right-pad a batch into tensors; padding gets label ``-100`` and attention mask 0."""
    import torch  # noqa: PLC0415

    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, e in enumerate(batch):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        labels[row, :n] = torch.tensor(e.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


# ------------------------------------------------------------------------------- model
def lora_config(cfg: LoraTrainConfig) -> Any:
    """The ``peft.LoraConfig`` for ``cfg`` (causal LM, no bias training)."""
    from peft import LoraConfig  # noqa: PLC0415

    return LoraConfig(
        r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=list(cfg.target_modules),
        bias="none", task_type="CAUSAL_LM",
    )


def _linear_names(model: Any) -> set[str]:
    import torch  # noqa: PLC0415

    return {name.rsplit(".", 1)[-1] for name, mod in model.named_modules()
            if isinstance(mod, torch.nn.Linear)}


def attach_lora(base_model: Any, cfg: LoraTrainConfig | None = None, *, copy_base: bool = True) -> Any:
    """Wrap (a deep copy of) ``base_model`` with LoRA adapters; only the adapters train.

    Args:
        base_model: a transformers causal LM.
        cfg: the LoRA settings (rank, alpha, dropout, target modules, seed).
        copy_base: copy the model first (default) so a shared instance stays untouched.

    Raises:
        InputError: a target module name does not exist in the model.
    """
    import torch  # noqa: PLC0415
    from peft import get_peft_model  # noqa: PLC0415

    cfg = cfg or LoraTrainConfig()
    available = _linear_names(base_model)
    missing = [t for t in cfg.target_modules if t not in available]
    if missing:
        raise InputError(f"target_modules {missing} are not linear layers of this model; "
                         f"available: {sorted(available)}")
    model = copy.deepcopy(base_model) if copy_base else base_model
    torch.manual_seed(cfg.seed)  # LoRA's A matrices are initialised randomly
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
        return get_peft_model(model, lora_config(cfg))


def count_parameters(model: Any) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts.

    Example:
        >>> import torch
        >>> count_parameters(torch.nn.Linear(4, 2))
        (10, 10)
    """
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def lora_parameter_count(model: Any, rank: int, target_modules: Sequence[str]) -> int:
    """LoRA weights that ``rank`` on ``target_modules`` would add to ``model`` (nothing is attached).

    Each adapted linear layer adds ``rank * (in_features + out_features)``.
    """
    import torch  # noqa: PLC0415

    targets = set(target_modules)
    return sum(rank * (m.in_features + m.out_features) for name, m in _causal_lm(model).named_modules()
               if isinstance(m, torch.nn.Linear) and name.rsplit(".", 1)[-1] in targets)


def _causal_lm(model: Any) -> Any:
    """The transformers ``*ForCausalLM`` inside a peft wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def masked_lm_loss(model: Any, batch: dict[str, Any]) -> tuple[Any, int]:
    """Mean cross-entropy over the labelled tokens, and how many there were.

    Only positions with a label need logits, so the hidden states are gathered at those
    positions before the (49,152-wide) output layer: on SmolLM2 this skips most of the
    vocabulary projection, which is a large share of the compute for short replies.
    """
    import torch  # noqa: PLC0415
    import torch.nn.functional as F  # noqa: N812, PLC0415

    lm = _causal_lm(model)
    decoder = lm.get_decoder()
    hidden = decoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    targets = batch["labels"][:, 1:]
    keep = targets != IGNORE_INDEX
    n = int(keep.sum())
    if n == 0:
        return hidden.sum() * 0.0, 0
    logits = lm.get_output_embeddings()(hidden[:, :-1][keep])
    return F.cross_entropy(logits.float(), targets[keep]), n


def evaluate_loss(model: Any, encoded: Sequence[Encoded], *, batch_size: int = 8, pad_id: int = 0) -> float:
    """Token-weighted mean loss of ``model`` on ``encoded`` (no gradients, eval mode)."""
    import torch  # noqa: PLC0415

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(encoded), batch_size):
            batch = {k: v.to(device) for k, v in collate(encoded[start:start + batch_size], pad_id).items()}
            loss, n = masked_lm_loss(model, batch)
            total += loss.item() * n
            count += n
    model.train(was_training)
    return total / max(count, 1)


@dataclass
class TrainResult:
    """What :func:`train_lora` returns.

    Attributes:
        model: the peft model with the best adapter weights (lowest validation loss).
        history: one dict per optimizer step: ``step``, ``train_loss``, ``lr``, ``seconds`` and,
            on evaluation steps, ``val_loss``.
        best_step: the step whose weights were kept (0 = before training).
        best_val_loss: the validation loss at ``best_step`` (``nan`` without validation data).
        stopped_early: whether early stopping ended the run.
        device: where it trained (``cpu`` / ``cuda``).
        precision: ``float32`` or ``bf16 autocast``.
        seconds: wall-clock training time (evaluations included).
        train_tokens: tokens processed in training forward passes (padding excluded).
        config: the settings used.
        initial_val_loss: validation loss before the first step (``nan`` without validation data).
        examples: training examples, task and rehearsal together.
        rehearsal_examples: how many of them were rehearsal examples.
    """

    model: Any
    history: list[dict[str, float]]
    best_step: int
    best_val_loss: float
    stopped_early: bool
    device: str
    precision: str
    seconds: float
    train_tokens: int
    config: LoraTrainConfig
    initial_val_loss: float = math.nan
    examples: int = 0
    rehearsal_examples: int = 0

    @property
    def steps(self) -> int:
        """Optimizer steps run."""
        return len(self.history)

    def summary(self) -> str:
        """One line for logs and notebooks."""
        losses = [h["train_loss"] for h in self.history]
        first = sum(losses[:3]) / max(len(losses[:3]), 1)
        last = sum(losses[-3:]) / max(len(losses[-3:]), 1)
        return (f"{self.steps} steps on {self.device} ({self.precision}) in {self.seconds:.1f} s; "
                f"train loss {first:.3f} -> {last:.3f} (mean of first/last 3 steps); "
                f"best step {self.best_step}"
                + (f", val loss {self.best_val_loss:.3f}" if not math.isnan(self.best_val_loss) else "")
                + (" (stopped early)" if self.stopped_early else ""))


def _seed_everything(seed: int) -> None:
    import numpy as np  # noqa: PLC0415
    import torch  # noqa: PLC0415

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train_lora(
    base_model: Any,
    tokenizer: Any,
    train: Sequence[Any],
    validation: Sequence[Any] | None = None,
    cfg: LoraTrainConfig | None = None,
    *,
    reply_check: Callable[[str], Any] | None = None,
    rehearsal: Sequence[Any] | None = None,
    progress: bool = True,
    model: Any | None = None,
) -> TrainResult:
    """Fine-tune LoRA adapters on chat examples with a plain torch loop.

    Every input problem (malformed examples, replies failing ``reply_check``, sequences
    over ``cfg.max_length``, unknown target modules) raises before the first step.

    Args:
        base_model: the transformers model to adapt; it is copied, never modified.
        tokenizer: its tokenizer (with a chat template).
        train: training examples (see :func:`validate_examples` for accepted shapes).
        validation: examples for the validation loss and early stopping (optional).
        cfg: hyper-parameters; see :class:`LoraTrainConfig`.
        reply_check: validator every assistant reply of ``train`` and ``validation`` must
            pass (the target schema).
        rehearsal: general examples mixed into the training data without ``reply_check``
            (for example :func:`rehearsal_examples`: the base model's own replies), so the
            adapter learns the new format without forgetting how to answer plain
            questions. They are shuffled in with ``train``; validation stays task-only.
        progress: show a tqdm progress bar.
        model: continue training this peft model instead of attaching fresh adapters.

    Returns:
        A :class:`TrainResult`; ``result.model`` holds the best adapter weights.

    Example:
        >>> result = train_lora(base, tok, train, val, LoraTrainConfig(max_steps=20))  # doctest: +SKIP
        >>> result.summary()                                                          # doctest: +SKIP
    """
    import torch  # noqa: PLC0415
    from tqdm.auto import tqdm  # noqa: PLC0415

    cfg = cfg or LoraTrainConfig()
    train_enc = encode_dataset(train, tokenizer, max_length=cfg.max_length, reply_check=reply_check)
    rehearsal_enc = encode_dataset(rehearsal, tokenizer, max_length=cfg.max_length) if rehearsal else []
    train_enc += rehearsal_enc
    val_enc = (encode_dataset(validation, tokenizer, max_length=cfg.max_length, reply_check=reply_check)
               if validation else [])
    device = pick_device(cfg.device)
    amp = _autocast_dtype(device, cfg.precision)
    _seed_everything(cfg.seed)
    peft_model = model if model is not None else attach_lora(base_model, cfg)
    peft_model.to(device)
    peft_model.train()
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else end_of_turn_id(tokenizer)

    per_epoch = math.ceil(len(train_enc) / cfg.effective_batch)
    total_steps = cfg.max_steps or max(1, math.ceil(per_epoch * cfg.epochs))
    params = [p for p in peft_model.parameters() if p.requires_grad]
    if not params:
        raise InputError("the model has no trainable parameters: attach LoRA adapters first")
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=0.0)

    def lr_at(step: int) -> float:  # step counts from 1
        if step <= cfg.warmup_steps:
            return cfg.learning_rate * step / max(cfg.warmup_steps, 1)
        remaining = max(total_steps - cfg.warmup_steps, 1)
        return cfg.learning_rate * max(0.0, (total_steps - step + 1) / remaining)

    order_gen = torch.Generator().manual_seed(cfg.seed)
    queue: list[int] = []

    def next_batch() -> list[Encoded]:
        nonlocal queue
        if len(queue) < cfg.batch_size:
            queue += torch.randperm(len(train_enc), generator=order_gen).tolist()
        picked, queue = queue[:cfg.batch_size], queue[cfg.batch_size:]
        return [train_enc[i] for i in picked]

    def trainable_state() -> dict[str, Any]:
        return {n: p.detach().clone() for n, p in peft_model.named_parameters() if p.requires_grad}

    best_val, best_step, best_state = math.nan, 0, trainable_state()
    if val_enc:
        best_val = evaluate_loss(peft_model, val_enc, batch_size=cfg.batch_size * 2, pad_id=pad_id)
    initial_val = best_val
    history: list[dict[str, float]] = []
    bad_evals, stopped_early, tokens = 0, False, 0
    started = time.perf_counter()
    bar = tqdm(range(1, total_steps + 1), desc=f"LoRA r={cfg.rank} on {device.type}", disable=not progress,
               leave=True)
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step)
        step_loss = 0.0
        for _ in range(cfg.grad_accum):
            batch = {k: v.to(device) for k, v in collate(next_batch(), pad_id).items()}
            tokens += int(batch["attention_mask"].sum())
            with torch.autocast(device_type=device.type, dtype=amp, enabled=amp is not None):
                loss, _ = masked_lm_loss(peft_model, batch)
            (loss / cfg.grad_accum).backward()
            step_loss += loss.detach().item() / cfg.grad_accum
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        record = {"step": float(step), "train_loss": step_loss, "lr": lr_at(step),
                  "seconds": time.perf_counter() - started}
        if val_enc and (step % cfg.eval_every == 0 or step == total_steps):
            val = evaluate_loss(peft_model, val_enc, batch_size=cfg.batch_size * 2, pad_id=pad_id)
            record["val_loss"] = val
            if math.isnan(best_val) or val < best_val - cfg.min_delta:
                best_val, best_step, best_state, bad_evals = val, step, trainable_state(), 0
            else:
                bad_evals += 1
        history.append(record)
        postfix = {"loss": f"{step_loss:.3f}"}
        if "val_loss" in record:
            postfix["val"] = f"{record['val_loss']:.3f}"
        bar.set_postfix(**postfix)
        if bad_evals >= cfg.patience:
            stopped_early = True
            break
    bar.close()
    if val_enc:
        with torch.no_grad():
            for name, p in peft_model.named_parameters():
                if name in best_state:
                    p.copy_(best_state[name])
    else:
        best_step = len(history)
    peft_model.eval()
    return TrainResult(
        model=peft_model, history=history, best_step=best_step, best_val_loss=best_val,
        stopped_early=stopped_early, device=device.type,
        precision="bf16 autocast" if amp is not None else "float32",
        seconds=time.perf_counter() - started, train_tokens=tokens, config=cfg, initial_val_loss=initial_val,
        examples=len(train_enc), rehearsal_examples=len(rehearsal_enc),
    )


# -------------------------------------------------------------------------- generation
@dataclass(frozen=True)
class Generation:
    """One generated reply: text, tokens generated, and this request's share of the batch time.

    ``finish_reason`` is ``"stop"`` when the model ended its turn and ``"length"`` when
    ``max_new_tokens`` cut it off (the same words as the OpenAI API).
    """

    text: str
    completion_tokens: int
    seconds: float
    finish_reason: str = "stop"


def generate_replies(
    model: Any, tokenizer: Any, conversations: Sequence[Sequence[dict[str, Any]]], *,
    max_new_tokens: int = 96, batch_size: int = 8, progress: bool = False,
) -> list[Generation]:
    """Greedy replies to many conversations, batched with left padding.

    Each conversation is the prompt (system/user turns); a trailing assistant turn, if
    present, is dropped so the model answers it. Generation stops at the end-of-turn token.

    Example:
        >>> generate_replies(model, tok, [[{"role": "user", "content": "Hi"}]])[0].text  # doctest: +SKIP
    """
    import torch  # noqa: PLC0415
    from tqdm.auto import tqdm  # noqa: PLC0415

    prompts = []
    for i, conv in enumerate(conversations):
        msgs = [dict(m) if isinstance(m, dict) else m.model_dump() for m in conv]
        if msgs and msgs[-1]["role"] == "assistant":
            msgs = msgs[:-1]
        if not msgs:
            raise InputError(f"conversation {i} has no prompt messages")
        prompts.append(render_prompt(msgs, tokenizer))
    device = next(model.parameters()).device
    eot = end_of_turn_id(tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eot
    out: list[Generation] = []
    was_training = model.training
    model.eval()
    try:
        starts = range(0, len(prompts), batch_size)
        for start in tqdm(starts, desc="generating", disable=not progress, leave=False):
            rows = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts[start:start + batch_size]]
            width = max(len(r) for r in rows)
            # left padding (by hand, so a tokenizer without a pad token works too)
            ids = torch.tensor([[pad_id] * (width - len(r)) + r for r in rows], device=device)
            mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=device)
            t0 = time.perf_counter()
            with torch.no_grad():
                gen = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                     do_sample=False, temperature=None, top_p=None, top_k=None,
                                     pad_token_id=pad_id, eos_token_id=eot)
            dt = time.perf_counter() - t0
            for row in gen[:, width:].tolist():
                stop = next((k + 1 for k, t in enumerate(row) if t == eot), None)
                n = stop or len(row)
                text = tokenizer.decode(row[:n], skip_special_tokens=True)
                out.append(Generation(text=text.strip(), completion_tokens=n, seconds=dt / len(rows),
                                      finish_reason="stop" if stop else "length"))
    finally:
        model.train(was_training)
    return out


def rehearsal_examples(
    model: Any, tokenizer: Any, prompts: Sequence[Any], *, max_new_tokens: int = 64,
    batch_size: int = 8, progress: bool = False,
) -> list[dict[str, Any]]:
    """Pair general prompts with the model's own greedy replies, as training examples.

    Mixing these into a fine-tuning set (``train_lora(..., rehearsal=...)``) is a cheap
    guard against forgetting: the adapter is trained to keep answering plain questions
    the way the base model already does while it learns the new format. The replies
    are the base model's, right or wrong; rehearsal preserves behaviour, it does not
    teach facts. Replies cut off by ``max_new_tokens`` are dropped rather than trained
    on as if they were complete, and so are empty ones.

    Args:
        model: the base model, before any adapter is attached.
        tokenizer: its tokenizer.
        prompts: records with ``id`` and ``messages`` (for example
            ``load_finetune("rehearsal")``), or plain message lists.
        max_new_tokens: the longest reply kept.
        batch_size: prompts per generation batch.
        progress: show a tqdm progress bar.

    Returns:
        ``{"id", "messages": [..., assistant]}`` dicts accepted by :func:`train_lora`.

    Raises:
        InputError: no prompts, or no prompt got a complete reply.

    Example:
        >>> extra = rehearsal_examples(base, tok, load_finetune("rehearsal"))  # doctest: +SKIP
        >>> train_lora(base, tok, train, val, cfg, rehearsal=extra)            # doctest: +SKIP
    """
    items = list(prompts)
    if not items:
        raise InputError("rehearsal_examples needs at least one prompt")
    conversations = [_as_messages(p, _example_id(p, i), require_assistant=False) for i, p in enumerate(items)]
    gens = generate_replies(model, tokenizer, conversations, max_new_tokens=max_new_tokens,
                            batch_size=batch_size, progress=progress)
    out = []
    for i, (conv, gen) in enumerate(zip(conversations, gens)):
        if gen.text and gen.finish_reason == "stop":
            out.append({"id": str(_raw_id(items[i]) or f"rehearsal-{i + 1:02d}"),
                        "messages": [*conv, {"role": "assistant", "content": gen.text}]})
    if not out:
        raise InputError(f"none of the {len(items)} rehearsal prompts got a complete reply within "
                         f"{max_new_tokens} tokens; raise max_new_tokens")
    return out


# -------------------------------------------------------------------------- evaluation
@dataclass(frozen=True)
class ReplyScore:
    """How one reply did on the cited-JSON task.

    Attributes:
        valid: parses and matches the schema.
        error: why it is invalid ('' when valid).
        answerable: whether the gold example is answerable.
        citation_exact: cited ids equal the gold ids (as sets).
        citation_precision, citation_recall, citation_f1: against the gold ids.
        keyword_hit: every gold keyword occurs in the answer (case-insensitive); None when unanswerable.
        refused: the reply is the refusal.
        refusal_correct: refused iff the example is unanswerable.
    """

    valid: bool
    error: str
    answerable: bool
    citation_exact: bool
    citation_precision: float
    citation_recall: float
    citation_f1: float
    keyword_hit: bool | None
    refused: bool
    refusal_correct: bool


def _prf(pred: Sequence[str], gold: Sequence[str]) -> tuple[float, float, float]:
    p_set, g_set = set(pred), set(gold)
    if not p_set and not g_set:
        return 1.0, 1.0, 1.0
    tp = len(p_set & g_set)
    precision = tp / len(p_set) if p_set else 0.0
    recall = tp / len(g_set) if g_set else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def score_reply(reply: str, example: Any) -> ReplyScore:
    """Score one reply against a :class:`reference.datasets.sets.ChatExample`.

    An invalid reply scores zero on every field (and counts as not refusing).

    Example:
        >>> ex = load_finetune("test")[0]                                   # doctest: +SKIP
        >>> score_reply(ex.messages[2].content, ex).citation_exact          # doctest: +SKIP
        True
    """
    from reference.datasets.sets import REFUSAL, parse_cited_answer  # noqa: PLC0415

    meta = example.meta
    try:
        parsed = parse_cited_answer(reply.strip())
    except InputError as exc:
        return ReplyScore(False, str(exc), meta.answerable, False, 0.0, 0.0, 0.0,
                          False if meta.answerable else None, False, False)
    refused = parsed.answer.strip() == REFUSAL
    precision, recall, f1 = _prf(parsed.citations, meta.gold_citations)
    keyword = None
    if meta.answerable:
        low = parsed.answer.lower()
        keyword = all(k.lower() in low for k in meta.gold_answer_keywords)
    return ReplyScore(
        valid=True, error="", answerable=meta.answerable,
        citation_exact=set(parsed.citations) == set(meta.gold_citations),
        citation_precision=precision, citation_recall=recall, citation_f1=f1, keyword_hit=keyword,
        refused=refused, refusal_correct=refused != meta.answerable,
    )


def task_metrics(replies: Sequence[str], examples: Sequence[Any]) -> dict[str, float]:
    """Aggregate cited-JSON metrics over a split.

    Returns:
        ``n``, ``validity``, ``citation_exact``, ``citation_f1``, ``keyword_accuracy``
        (answerable only), ``refusal_accuracy`` (unanswerable only: refused) and
        ``false_refusal_rate`` (answerable only: refused anyway). Rates are in [0, 1].
    """
    if len(replies) != len(examples):
        raise InputError(f"{len(replies)} replies for {len(examples)} examples")
    if not examples:
        raise InputError("no examples to score")
    scores = [score_reply(r, e) for r, e in zip(replies, examples)]
    answerable = [s for s in scores if s.answerable]
    unanswerable = [s for s in scores if not s.answerable]

    def mean(values: Sequence[float]) -> float:
        return sum(values) / len(values) if values else math.nan

    return {
        "n": float(len(scores)),
        "validity": mean([s.valid for s in scores]),
        "citation_exact": mean([s.citation_exact for s in scores]),
        "citation_f1": mean([s.citation_f1 for s in scores]),
        "keyword_accuracy": mean([bool(s.keyword_hit) for s in answerable]),
        "refusal_accuracy": mean([s.refused for s in unanswerable]),
        "false_refusal_rate": mean([s.refused for s in answerable]),
    }


def sanity_pass_rate(replies: Sequence[str], prompts: Sequence[Any]) -> float:
    """Share of sanity prompts whose reply contains an expected keyword."""
    if len(replies) != len(prompts) or not prompts:
        raise InputError(f"need one reply per sanity prompt ({len(replies)} replies, {len(prompts)} prompts)")
    return sum(p.passes(r) for r, p in zip(replies, prompts)) / len(prompts)


# ---------------------------------------------------------------------------- adapters
def base_fingerprint(model: Any) -> dict[str, Any]:
    """Architecture facts an adapter depends on (compared when loading one)."""
    config = _causal_lm(model).config
    keys = ("model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
            "intermediate_size", "vocab_size")
    return {k: getattr(config, k, None) for k in keys}


def save_adapter(model: Any, path: str | Path, *, base_name: str = LOCAL_CHAT_MODEL,
                 extra: dict[str, Any] | None = None) -> Path:
    """Save only the adapter weights (a few MB) plus a note of the base model they need.

    Args:
        model: a peft model.
        path: folder to write (created).
        base_name: the base model's public name, recorded in the adapter config.
        extra: anything else worth keeping with the adapter (metrics, data version).

    Returns:
        The folder.
    """
    if not hasattr(model, "peft_config"):
        raise InputError("save_adapter needs a peft model (see attach_lora / train_lora)")
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    for cfg in model.peft_config.values():
        cfg.base_model_name_or_path = base_name
    # the embeddings are not trained, so they are not saved (and peft need not look up the base)
    model.save_pretrained(folder, save_embedding_layers=False)
    trainable, total = count_parameters(model)
    meta = {"base_model": base_name, "fingerprint": base_fingerprint(model),
            "lora_parameters": trainable, **(extra or {})}
    (folder / ADAPTER_META_FILE).write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
    return folder


def _module_shapes(model: Any) -> dict[str, tuple[int, int]]:
    import torch  # noqa: PLC0415

    return {name: (mod.in_features, mod.out_features) for name, mod in model.named_modules()
            if isinstance(mod, torch.nn.Linear)}


def check_adapter(base_model: Any, path: str | Path) -> dict[str, Any]:
    """Refuse an adapter that does not fit ``base_model``, before loading any weights.

    Checks, in order: the folder holds a peft adapter; the recorded base model
    fingerprint (when present) equals this model's; every LoRA matrix names a layer of
    this model with matching shapes.

    Returns:
        The adapter's ``adapter_config.json`` as a dict.

    Raises:
        AdapterMismatchError: any check fails; the message says what differs.
    """
    from safetensors import safe_open  # noqa: PLC0415

    folder = Path(path)
    cfg_path, weights = folder / "adapter_config.json", folder / "adapter_model.safetensors"
    if not cfg_path.is_file() or not weights.is_file():
        raise AdapterMismatchError(f"{folder} is not a saved adapter (needs adapter_config.json and "
                                   "adapter_model.safetensors)")
    try:
        adapter_cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise AdapterMismatchError(f"{cfg_path}: not valid JSON ({exc.msg})") from exc
    meta_path = folder / ADAPTER_META_FILE
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        want, have = meta.get("fingerprint", {}), base_fingerprint(base_model)
        diff = {k: (want.get(k), have.get(k)) for k in have if want.get(k) != have.get(k)}
        if diff:
            details = ", ".join(f"{k}: adapter {a} vs model {b}" for k, (a, b) in diff.items())
            raise AdapterMismatchError(
                f"adapter in {folder} was trained for base model {meta.get('base_model')!r}, which differs "
                f"from this model ({details})")
    lm = _causal_lm(base_model)
    shapes = _module_shapes(lm)
    modules = dict(lm.named_modules())
    with safe_open(str(weights), framework="pt") as handle:
        for key in handle.keys():
            if ".lora_A." not in key and ".lora_B." not in key:
                continue
            module = key.split(".lora_")[0]
            module = module.removeprefix("base_model.model.")
            if module in modules and module not in shapes:
                kind = f"{type(modules[module]).__module__}.{type(modules[module]).__name__}"
                raise AdapterMismatchError(
                    f"layer {module!r} of this model is a {kind}, not a float torch.nn.Linear (a quantized "
                    "model?): load the adapter onto the float model, merge it, then quantize the merged "
                    "model")
            if module not in shapes:
                raise AdapterMismatchError(f"adapter weight {key} targets layer {module!r}, "
                                           f"which this base model does not have")
            shape = tuple(handle.get_slice(key).get_shape())
            in_f, out_f = shapes[module]
            ok = shape[1] == in_f if ".lora_A." in key else shape[0] == out_f
            if not ok:
                raise AdapterMismatchError(
                    f"adapter weight {key} has shape {list(shape)}, but layer {module!r} of this model maps "
                    f"{in_f} -> {out_f} features: the adapter was trained for a different base model")
    return adapter_cfg


def load_adapter(
    base_model: Any, path: str | Path, *, copy_base: bool = True, trainable: bool = False,
) -> Any:
    """Load a saved adapter onto (a copy of) ``base_model`` after :func:`check_adapter`.

    Example:
        >>> tuned = load_adapter(base, "adapters/cited-json")          # doctest: +SKIP
    """
    from peft import PeftModel  # noqa: PLC0415

    check_adapter(base_model, path)
    model = copy.deepcopy(base_model) if copy_base else base_model
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
        loaded = PeftModel.from_pretrained(model, str(path), is_trainable=trainable)
    loaded.eval()
    return loaded


def merge_adapter(peft_model: Any, *, copy_model: bool = True) -> Any:
    """Fold the LoRA update into the base weights: a plain model, no adapter overhead.

    ``W' = W + (alpha / r) * B @ A`` for every adapted layer. With ``copy_model`` (the
    default) the peft model keeps its separate adapter.
    """
    if not hasattr(peft_model, "merge_and_unload"):
        raise InputError("merge_adapter needs a peft model")
    model = copy.deepcopy(peft_model) if copy_model else peft_model
    return model.merge_and_unload()


def serve_name(task: str = "cited-json") -> str:
    """The model name an adapter is served under, e.g. ``smollm2-135m-cited-json``."""
    return LOCAL_CHAT_MODEL.removesuffix("-instruct") + f"-{task}"


# --------------------------------------------------------------------- demo adapter
#: The settings of the quick CI-sized run (FAST mode): ten steps of two short examples.
FAST_CONFIG = LoraTrainConfig(rank=8, batch_size=2, max_steps=10, learning_rate=2e-3, warmup_steps=2,
                              eval_every=10)
#: The full run (``benchmarks/finetune.py``, notebooks with ``LAB_FAST=0``): the whole train split.
FULL_CONFIG = LoraTrainConfig(rank=8, batch_size=4, grad_accum=2, epochs=1, learning_rate=1e-3,
                              warmup_steps=3, eval_every=8, patience=2)


def fast_subset(train: Sequence[Any], tokenizer: Any, *, n: int = 20, unanswerable: int = 4) -> list[Any]:
    """The ``n`` shortest training examples, ``unanswerable`` of them refusals (FAST mode).

    Short examples keep a CPU run to seconds; the mix keeps refusals in the data
    (about a fifth, as in the full split).
    """
    if not 0 <= unanswerable <= n:
        raise InputError(f"unanswerable must be between 0 and n={n}, got {unanswerable}")
    length = {id(e): len(encode_chat(_as_messages(e, "example"), tokenizer).input_ids) for e in train}
    answerable = sorted((e for e in train if e.meta.answerable), key=lambda e: length[id(e)])
    refusals = sorted((e for e in train if not e.meta.answerable), key=lambda e: length[id(e)])
    return answerable[:n - unanswerable] + refusals[:unanswerable]


def demo_adapter(*, refresh: bool = False, progress: bool = True) -> Path:
    """Train (once) and cache the FAST-mode cited-JSON adapter; return its folder.

    Notebooks that need *a* fine-tuned model without teaching training use this: the
    first call trains :data:`FAST_CONFIG` on :func:`fast_subset` of the train split
    (tens of seconds on one CPU thread) and saves it under
    ``<cache_dir>/adapters/``; later calls only return the folder.
    """
    from reference.datasets.sets import load_finetune, parse_cited_answer  # noqa: PLC0415
    from reference.hf import cache_dir, load_hf_model  # noqa: PLC0415

    key = f"cited-json-fast-r{FAST_CONFIG.rank}-s{FAST_CONFIG.max_steps}-b{FAST_CONFIG.batch_size}-v1"
    folder = cache_dir() / "adapters" / key
    if (folder / ADAPTER_META_FILE).is_file() and not refresh:
        return folder
    base, tok = load_hf_model()
    subset = fast_subset(load_finetune("train"), tok)
    result = train_lora(base, tok, subset, cfg=FAST_CONFIG, reply_check=parse_cited_answer, progress=progress)
    tmp = folder.with_name(folder.name + f".tmp{time.time_ns()}")
    save_adapter(result.model, tmp, extra={"mode": "fast", "examples": len(subset),
                                           "summary": result.summary(), "config": config_dict(FAST_CONFIG)})
    if folder.exists():
        import shutil  # noqa: PLC0415

        shutil.rmtree(folder, ignore_errors=True)
    try:
        tmp.replace(folder)
    except OSError:  # another process finished first: use theirs
        import shutil  # noqa: PLC0415

        shutil.rmtree(tmp, ignore_errors=True)
    return folder


# ----------------------------------------------------------------------------- intents
@dataclass
class EmbeddingIntentClassifier:
    """Logistic regression on sentence embeddings: a small, cheap, trained classifier.

    Attributes:
        embedder: an :class:`reference.embeddings.Embedder` (local MiniLM by default).
        c: inverse regularisation strength of the logistic regression.

    Example:
        >>> from reference.embeddings import FakeEmbedder
        >>> clf = EmbeddingIntentClassifier(FakeEmbedder(dim=32)).fit(["hi there", "reset my vpn"],
        ...                                                          ["smalltalk", "it_troubleshooting"])
        >>> clf.predict(["hi there"])
        ['smalltalk']
    """

    embedder: Any
    c: float = 10.0
    labels_: list[str] = field(default_factory=list)
    _model: Any = None

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> EmbeddingIntentClassifier:
        """Embed ``texts`` and fit the classifier; needs at least two distinct labels."""
        from sklearn.linear_model import LogisticRegression  # noqa: PLC0415

        if len(texts) != len(labels) or not texts:
            raise InputError(f"need one label per text ({len(texts)} texts, {len(labels)} labels)")
        if len(set(labels)) < 2:
            raise InputError("need at least two different labels to train a classifier")
        self._model = LogisticRegression(C=self.c, max_iter=2000)
        self._model.fit(self.embedder.embed(list(texts)), list(labels))
        self.labels_ = [str(x) for x in self._model.classes_]
        return self

    def predict(self, texts: Sequence[str]) -> list[str]:
        """Most likely label per text."""
        return [label for label, _ in self.predict_with_confidence(texts)]

    def predict_with_confidence(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """Most likely label per text with its predicted probability."""
        if self._model is None:
            raise InputError("call fit() before predict()")
        proba = self._model.predict_proba(self.embedder.embed(list(texts)))
        return [(self.labels_[int(row.argmax())], float(row.max())) for row in proba]


def config_dict(cfg: LoraTrainConfig) -> dict[str, Any]:
    """The configuration as a plain dict (for logs and adapter metadata)."""
    return asdict(cfg)
