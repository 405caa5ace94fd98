"""SmolLM2 as a torch model via transformers: the training path, and a slow fallback.

llama.cpp is the fast path for inference; LoRA fine-tuning needs a torch model.
transformers reads the shipped GGUF (``gguf_file=``) and dequantises the Q4_1
weights to float32, which takes ~15 s. The first load saves the result as
safetensors under ``~/.cache/ai-engineering-lab`` (``LAB_CACHE_DIR`` overrides), so
later loads take a couple of seconds.

Example:
    >>> model, tokenizer = load_hf_model()      # doctest: +SKIP
    >>> model.num_parameters()                  # doctest: +SKIP
    134515008
"""

from __future__ import annotations

import os
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from reference.config import LOCAL_CHAT_MODEL, get_settings
from reference.errors import InputTooLargeError
from reference.llm import ChatModel, Message, Usage, _messages_for_template, _Result, smollm2_gguf_path


def cache_dir() -> Path:
    """Where the lab keeps derived artefacts (dequantised weights, indexes)."""
    return Path(os.environ.get("LAB_CACHE_DIR", Path.home() / ".cache" / "ai-engineering-lab"))


@lru_cache(maxsize=1)
def load_hf_model(dtype: str = "float32") -> tuple[Any, Any]:
    """Load SmolLM2-135M-Instruct as a transformers model and tokenizer, offline.

    Args:
        dtype: torch dtype name; float32 is the CPU default (bfloat16 was slower here).

    Returns:
        ``(model, tokenizer)``; the model is in eval mode on the CPU.
    """
    import torch  # noqa: PLC0415
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: PLC0415

    torch.set_num_threads(get_settings().threads)
    saved = cache_dir() / "smollm2-135m-instruct-hf"
    if (saved / "model.safetensors").is_file():
        tokenizer = AutoTokenizer.from_pretrained(saved, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(saved, dtype=getattr(torch, dtype), local_files_only=True)
    else:
        gguf = smollm2_gguf_path()
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=getattr(torch, dtype), local_files_only=True
        )
        saved.mkdir(parents=True, exist_ok=True)
        tmp = saved.with_name(saved.name + f".tmp{os.getpid()}")
        # The weights are plain float32 tensors now; drop the GGUF "quantizer" marker so
        # transformers agrees to save them as an ordinary checkpoint.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for item in tmp.iterdir():
            item.replace(saved / item.name)
        tmp.rmdir()
    model.eval()
    return model, tokenizer


class TransformersChatModel(ChatModel):
    """SmolLM2 through transformers: ~7x slower than llama.cpp, but pure Python wheels."""

    provider = "local"

    def __init__(self, *, model: str = LOCAL_CHAT_MODEL, n_ctx: int | None = None) -> None:
        super().__init__(model)
        self._model, self._tokenizer = load_hf_model()
        self.n_ctx = n_ctx or get_settings().context_tokens
        self._lock = threading.Lock()

    def _generate(self, messages: list[Message], **kw: Any) -> _Result:
        import torch  # noqa: PLC0415

        if kw["response_format"] or kw["tool_choice"] not in (None, "auto", "none"):
            # No grammar engine here: say so rather than return unparseable text.
            raise NotImplementedError(
                "constrained output needs the llama.cpp backend (LAB_LOCAL_BACKEND=llama_cpp)"
            )
        ids = self._tokenizer.apply_chat_template(
            _messages_for_template(messages), add_generation_prompt=True, return_tensors="pt"
        )
        if hasattr(ids, "input_ids"):
            ids = ids["input_ids"]
        n_prompt = int(ids.shape[1])
        if n_prompt + kw["max_tokens"] > self.n_ctx:
            raise InputTooLargeError(
                f"prompt is {n_prompt} tokens and max_tokens is {kw['max_tokens']}, "
                f"but the context window holds {self.n_ctx}"
            )
        greedy = kw["temperature"] == 0
        with self._lock, torch.no_grad():
            if kw["seed"] is not None:
                torch.manual_seed(kw["seed"])
            out = self._model.generate(
                ids, attention_mask=torch.ones_like(ids), max_new_tokens=kw["max_tokens"],
                do_sample=not greedy, temperature=None if greedy else kw["temperature"],
                top_p=None, top_k=None, pad_token_id=self._tokenizer.eos_token_id,
            )
        new = out[0, n_prompt:]
        text = self._tokenizer.decode(new, skip_special_tokens=True)
        finish = "length" if len(new) >= kw["max_tokens"] else "stop"
        for s in kw["stop"]:
            if s in text:
                text, finish = text.split(s, 1)[0], "stop"
        return _Result(text=text, usage=Usage(n_prompt, int(len(new))), finish_reason=finish)


def timed_load() -> float:
    """Seconds to load the transformers model (after clearing the in-process cache)."""
    load_hf_model.cache_clear()
    start = time.perf_counter()
    load_hf_model()
    return time.perf_counter() - start
