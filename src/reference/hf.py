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
import queue
import threading
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from reference.config import LOCAL_CHAT_MODEL, get_settings
from reference.errors import InputError, InputTooLargeError, ProviderError
from reference.llm import (
    Message,
    TokenStreamingChatModel,
    Usage,
    _messages_for_template,
    _Result,
    smollm2_gguf_path,
)


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
        model = AutoModelForCausalLM.from_pretrained(
            saved, dtype=getattr(torch, dtype), local_files_only=True
        )
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


class TransformersChatModel(TokenStreamingChatModel):
    """A transformers causal LM behind the lab's chat interface (and the lab server).

    By default it wraps the shared SmolLM2 from :func:`load_hf_model` (about 7x slower
    than llama.cpp, but pure Python wheels). Pass ``hf_model``/``tokenizer`` to wrap
    another model, for example one with a LoRA adapter, and ``model`` to give it its own
    name. It implements what :func:`reference.serve.create_app` needs from a chat model:
    ``n_ctx``, ``prompt_tokens(messages)`` and ``iter_tokens(...)``.

    There is no grammar engine here, so JSON-schema constrained decoding is refused
    with an :class:`InputError` instead of returning unconstrained text.

    Example:
        >>> chat = TransformersChatModel(hf_model=peft_model, tokenizer=tok,
        ...                              model="my-tuned")                  # doctest: +SKIP
        >>> chat.chat([{"role": "user", "content": "hi"}], max_tokens=8).text          # doctest: +SKIP
    """

    provider = "local"

    def __init__(
        self, *, model: str = LOCAL_CHAT_MODEL, n_ctx: int | None = None,
        hf_model: Any | None = None, tokenizer: Any | None = None,
    ) -> None:
        super().__init__(model)
        if (hf_model is None) != (tokenizer is None):
            raise InputError("pass both hf_model and tokenizer, or neither (to use the shared SmolLM2)")
        if hf_model is None:
            hf_model, tokenizer = load_hf_model()
        self._model, self._tokenizer = hf_model, tokenizer
        self.n_ctx = n_ctx or get_settings().context_tokens
        self._lock = threading.Lock()
        self._last_finish = "stop"

    @property
    def hf_model(self) -> Any:
        """The wrapped transformers model."""
        return self._model

    def _prompt_ids(self, messages: list[Message]) -> Any:
        text = self._tokenizer.apply_chat_template(
            _messages_for_template(messages), add_generation_prompt=True, tokenize=False
        )
        return self._tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]

    def prompt_tokens(self, messages: list[Message]) -> int:
        """Tokens of the fully templated prompt (what the context window must hold)."""
        return int(self._prompt_ids(messages).shape[1])

    def iter_tokens(
        self, messages: list[Message], *, max_tokens: int = 256, temperature: float = 0.0,
        stop: Sequence[str] | None = None, schema: dict[str, Any] | None = None, seed: int | None = 0,
        cancel: threading.Event | None = None,
    ) -> Iterator[str]:
        """Yield the reply one token at a time (greedy when ``temperature`` is 0).

        ``generate`` runs in a worker thread and hands each new token id to a queue; this
        generator decodes them incrementally, so one yielded piece is one token (a piece
        can be empty while a multi-byte character is incomplete). Setting ``cancel`` or
        closing the generator stops generation at the next token.

        Raises:
            InputError: ``schema`` was given (no constrained decoding in this backend).
            InputTooLargeError: prompt plus ``max_tokens`` does not fit the context window.
        """
        import torch  # noqa: PLC0415
        from transformers import StoppingCriteria, StoppingCriteriaList  # noqa: PLC0415
        from transformers.generation.streamers import BaseStreamer  # noqa: PLC0415

        if schema is not None:
            raise InputError(
                "JSON-schema constrained decoding is not available in the transformers backend; "
                "drop response_format (a fine-tuned model should produce the format by itself) "
                "or serve with llama.cpp"
            )
        ids = self._prompt_ids(messages)
        n_prompt = int(ids.shape[1])
        if n_prompt + max_tokens > self.n_ctx:
            raise InputTooLargeError(
                f"prompt is {n_prompt} tokens and max_tokens is {max_tokens}, but the context "
                f"window holds {self.n_ctx}: shorten the input or lower max_tokens"
            )
        stops = [s for s in (stop or []) if s]
        halt = threading.Event()
        pieces: queue.Queue[Any] = queue.Queue()
        _END = object()

        class _Queue(BaseStreamer):
            def __init__(self) -> None:
                self.seen_prompt = False

            def put(self, value: Any) -> None:
                if not self.seen_prompt:  # generate() first hands over the prompt
                    self.seen_prompt = True
                    return
                for tok in value.reshape(-1).tolist():
                    pieces.put(int(tok))

            def end(self) -> None:
                pieces.put(_END)

        class _Halt(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kw: Any) -> Any:
                flag = halt.is_set() or (cancel is not None and cancel.is_set())
                return torch.full((input_ids.shape[0],), flag, dtype=torch.bool, device=input_ids.device)

        greedy = temperature == 0
        device = next(self._model.parameters()).device
        errors: list[BaseException] = []

        def work() -> None:
            try:
                with torch.no_grad():
                    if seed is not None:
                        torch.manual_seed(seed)
                    self._model.generate(
                        ids.to(device), attention_mask=torch.ones_like(ids).to(device),
                        max_new_tokens=max_tokens, do_sample=not greedy,
                        temperature=None if greedy else temperature, top_p=None, top_k=None,
                        pad_token_id=self._tokenizer.pad_token_id or self._tokenizer.eos_token_id,
                        streamer=_Queue(), stopping_criteria=StoppingCriteriaList([_Halt()]),
                    )
            except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
                errors.append(exc)
                pieces.put(_END)

        eos = {self._tokenizer.eos_token_id}
        extra = getattr(getattr(self._model, "generation_config", None), "eos_token_id", None)
        eos |= set(extra if isinstance(extra, list) else [] if extra is None else [extra])
        with self._lock:
            self._last_finish = "length"
            worker = threading.Thread(target=work, name="hf-generate", daemon=True)
            worker.start()
            generated: list[int] = []
            emitted, text, hit_stop = "", "", False
            hold = max((len(s) for s in stops), default=1) - 1
            try:
                while True:
                    item = pieces.get()
                    if item is _END:
                        break
                    if item in eos:
                        self._last_finish = "stop"
                        break
                    generated.append(item)
                    text = self._tokenizer.decode(generated, skip_special_tokens=True)
                    if text.endswith("\ufffd"):  # an incomplete multi-byte character
                        yield ""
                        continue
                    hits = [text.find(s) for s in stops if s in text]
                    if hits:
                        if min(hits) > len(emitted):
                            yield text[len(emitted):min(hits)]
                        self._last_finish, hit_stop = "stop", True
                        break
                    # hold back a possible start of a stop string until it is decided
                    piece = text[len(emitted):max(len(text) - hold, len(emitted))]
                    emitted += piece
                    yield piece
                    if cancel is not None and cancel.is_set():
                        break
                if not hit_stop and len(text) > len(emitted) and not (cancel is not None and cancel.is_set()):
                    yield text[len(emitted):]
            finally:
                halt.set()
                worker.join()
            if errors:
                raise ProviderError(f"transformers generation failed: {errors[0]}") from errors[0]
            if cancel is not None and cancel.is_set():
                self._last_finish = "cancelled"

    def _generate(self, messages: list[Message], **kw: Any) -> _Result:
        if kw["response_format"] or kw["tool_choice"] not in (None, "auto", "none"):
            # No grammar engine here: say so rather than return unparseable text.
            raise NotImplementedError(
                "constrained output needs the llama.cpp backend (LAB_LOCAL_BACKEND=llama_cpp)"
            )
        pieces = list(
            self.iter_tokens(messages, max_tokens=kw["max_tokens"], temperature=kw["temperature"],
                             stop=kw["stop"], seed=kw["seed"])
        )
        return _Result(text="".join(pieces), usage=Usage(self.prompt_tokens(messages), len(pieces)),
                       finish_reason=self._last_finish)

