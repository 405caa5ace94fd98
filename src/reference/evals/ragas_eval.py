"""RAGAS with an explicitly configured judge: the lab's local server by default, never an implicit OpenAI.

RAGAS (``ragas==0.4.3``) scores RAG answers with LLM-judged metrics (faithfulness,
answer relevancy, context precision) and plain string metrics. Out of the box its
helpers reach for OpenAI; here every component is named:

* **judge LLM** - an ``instructor`` client over ``openai.AsyncOpenAI`` pointed at an
  explicit ``base_url``: the lab's OpenAI-compatible server
  (:class:`reference.serve.LabServer`) unless a provider is configured
  (``OPENAI_API_KEY`` / ``OPENAI_BASE_URL``). ``instructor.Mode.TOOLS`` makes RAGAS
  send a forced ``tool_choice``, which the lab's server decodes with a grammar, so the
  135M model's reply at least parses. (``ragas.llms.llm_factory`` hard-codes JSON mode,
  where the tiny model echoes the schema or runs out of tokens.)
* **embeddings** - :class:`LabRagasEmbeddings`, the lab's own embedder in-process.
* **analytics** - ``RAGAS_DO_NOT_TRACK=true`` is set before RAGAS is imported, so its
  usage tracker never tries to connect anywhere.

Every score that could not be computed is kept as NaN **with its reason** (``timeout``,
``connection_error``, ``max_tokens``, ``parse_error``, ``nan`` from RAGAS itself, ``error``) and
:func:`summarize_scores` reports those counts next to the mean of the valid scores, so a
metric that failed on 9 of 10 samples can never pass as a measurement.

Example:
    >>> s = summarize_scores([RagasScore("q1", "faithfulness", float("nan"), "timeout")])
    >>> s["faithfulness"]["n_ok"], s["faithfulness"]["by_status"]
    (0, {'timeout': 1})
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")  # before any ragas import: no analytics calls

from reference.config import LOCAL_CHAT_MODEL, Settings, get_settings  # noqa: E402
from reference.errors import ConfigurationError, InputError  # noqa: E402

__all__ = [
    "RagasSample", "RagasScore", "RagasReport", "RagasJudgeConfig", "LabRagasEmbeddings", "judge_config",
    "build_ragas_llm", "build_metrics", "run_ragas", "summarize_scores", "summarize_frame", "classify_error",
    "RAGAS_METRICS", "LLM_METRICS",
]

#: Metrics :func:`run_ragas` knows; the first three need the judge LLM.
RAGAS_METRICS = ("answer_relevancy", "context_precision", "faithfulness", "string_similarity")
LLM_METRICS = frozenset({"answer_relevancy", "context_precision", "faithfulness"})


@dataclass(frozen=True)
class RagasSample:
    """One RAG interaction to score."""

    id: str
    question: str
    answer: str
    contexts: list[str]
    reference: str = ""


@dataclass(frozen=True)
class RagasScore:
    """One metric on one sample: a float, or NaN with the reason in ``status``."""

    sample_id: str
    metric: str
    value: float
    status: str = "ok"
    detail: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok" and not math.isnan(self.value)


@dataclass(frozen=True)
class RagasJudgeConfig:
    """Where the RAGAS judge LLM lives; nothing is implicit.

    Attributes:
        base_url: OpenAI-compatible endpoint (the lab server's ``base_url`` for the local model).
        model: model name sent to that endpoint.
        label: human-readable description (printed in notebooks and stored with runs).
        max_tokens: generation budget per judge call.
        timeout_s: per-call HTTP timeout; also the per-score wall-clock limit.
        max_retries: instructor's re-asks after a reply that fails validation.
    """

    base_url: str
    model: str
    label: str
    api_key: str = field(default="unused", repr=False)
    max_tokens: int = 96
    timeout_s: float = 60.0
    max_retries: int = 0

    def public(self) -> dict[str, Any]:
        """The config without the API key (safe to print and to store with results)."""
        d = asdict(self)
        d.pop("api_key")
        return d


def judge_config(base_url: str | None = None, *, settings: Settings | None = None, max_tokens: int = 96,
                 timeout_s: float = 60.0, max_retries: int = 0) -> RagasJudgeConfig:
    """Choose the RAGAS judge explicitly.

    * ``base_url`` given (e.g. ``LabServer().base_url``): that server, model
      ``smollm2-135m-instruct`` (or ``LAB_CHAT_MODEL``).
    * otherwise a provider configured in the environment (``OPENAI_BASE_URL`` or
      ``OPENAI_API_KEY``), with ``LAB_CHAT_MODEL`` (default ``gpt-4o-mini`` for OpenAI).
    * otherwise :class:`ConfigurationError`: start a ``LabServer`` and pass its URL.

    Example:
        >>> judge_config("http://127.0.0.1:8000/v1").label
        'local server http://127.0.0.1:8000/v1 (smollm2-135m-instruct)'
    """
    s = settings or get_settings()
    common = {"max_tokens": max_tokens, "timeout_s": timeout_s, "max_retries": max_retries}
    if base_url:
        model = s.chat_model or LOCAL_CHAT_MODEL
        return RagasJudgeConfig(base_url, model, f"local server {base_url} ({model})", **common)
    provider = s.resolved_provider()
    key = s.openai_api_key.get_secret_value() if s.openai_api_key else ""
    if provider == "compatible" and s.openai_base_url:
        model = s.chat_model or LOCAL_CHAT_MODEL
        return RagasJudgeConfig(s.openai_base_url, model, f"compatible server {s.openai_base_url} ({model})",
                                key or "unused", **common)
    if provider == "openai" and key:
        from reference.config import OPENAI_DEFAULT_BASE_URL

        model = s.chat_model or "gpt-4o-mini"
        return RagasJudgeConfig(OPENAI_DEFAULT_BASE_URL, model, f"openai ({model})", key, **common)
    raise ConfigurationError(
        "no RAGAS judge configured: start reference.serve.LabServer() and pass its base_url, or set "
        "OPENAI_BASE_URL / OPENAI_API_KEY (RAGAS is never allowed to fall back to OpenAI on its own)"
    )


def _base_embedding_class() -> type:
    from ragas.embeddings.base import BaseRagasEmbedding

    return BaseRagasEmbedding


class LabRagasEmbeddings:
    """Adapter: the lab's embedder (``embed(list[str])``) as a RAGAS embedding.

    Built lazily as a subclass of ``ragas.embeddings.base.BaseRagasEmbedding`` so that
    importing this module does not import RAGAS.

    Example:
        >>> from reference.embeddings import FakeEmbedder
        >>> len(LabRagasEmbeddings(FakeEmbedder(dim=8)).embed_text("hi"))
        8
    """

    def __new__(cls, embedder: Any) -> Any:
        base = _base_embedding_class()

        class _Adapter(base):  # type: ignore[misc, valid-type]
            def __init__(self, inner: Any) -> None:
                super().__init__()
                self.inner = inner

            def embed_text(self, text: str, **kwargs: Any) -> list[float]:
                return self.inner.embed([text])[0].tolist()

            async def aembed_text(self, text: str, **kwargs: Any) -> list[float]:
                return self.embed_text(text)

            def embed_texts(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
                return self.inner.embed(list(texts)).tolist()

            async def aembed_texts(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
                return self.embed_texts(texts)

        _Adapter.__name__ = "LabRagasEmbeddings"
        return _Adapter(embedder)


def build_ragas_llm(config: RagasJudgeConfig) -> Any:
    """An ``InstructorLLM`` in TOOLS mode over ``AsyncOpenAI(base_url=config.base_url)``.

    Create it inside the event loop that will use it (:func:`run_ragas` does): the async
    HTTP client's connections belong to that loop.
    """
    import instructor
    from openai import AsyncOpenAI
    from ragas.llms.base import InstructorLLM, InstructorModelArgs

    client = AsyncOpenAI(base_url=config.base_url, api_key=config.api_key, timeout=config.timeout_s, max_retries=0)
    patched = instructor.from_openai(client, mode=instructor.Mode.TOOLS)
    args = InstructorModelArgs(temperature=0.0, top_p=1.0, max_tokens=config.max_tokens)
    return InstructorLLM(client=patched, model=config.model, provider="openai", model_args=args,
                         max_retries=config.max_retries)


def build_metrics(names: Sequence[str], llm: Any | None, embeddings: Any | None) -> dict[str, Any]:
    """RAGAS collection metrics by name, wired to ``llm`` and ``embeddings``."""
    from ragas.metrics.collections import (
        AnswerRelevancy,
        ContextPrecisionWithReference,
        Faithfulness,
        NonLLMStringSimilarity,
    )

    unknown = [n for n in names if n not in RAGAS_METRICS]
    if unknown:
        raise InputError(f"unknown RAGAS metrics {unknown}; choose from {RAGAS_METRICS}")
    if any(n in LLM_METRICS for n in names) and llm is None:
        raise ConfigurationError(f"metrics {sorted(LLM_METRICS & set(names))} need a judge LLM")
    if "answer_relevancy" in names and embeddings is None:
        raise ConfigurationError("answer_relevancy needs embeddings")
    out: dict[str, Any] = {}
    for n in names:
        if n == "answer_relevancy":
            out[n] = AnswerRelevancy(llm=llm, embeddings=embeddings, strictness=1)
        elif n == "context_precision":
            out[n] = ContextPrecisionWithReference(llm=llm)
        elif n == "faithfulness":
            out[n] = Faithfulness(llm=llm)
        else:
            out[n] = NonLLMStringSimilarity()
    return out


def classify_error(exc: BaseException) -> str:
    """Map an exception from a RAGAS score to a status.

    One of ``timeout``, ``connection_error``, ``max_tokens``, ``parse_error`` or ``error``.

    Example:
        >>> classify_error(TimeoutError()), classify_error(ValueError("bad json"))
        ('timeout', 'error')
    """
    name = type(exc).__name__
    text = str(exc)
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)) or "Timeout" in name or "timed out" in text.lower():
        return "timeout"
    if "connection" in text.lower() or "Connection" in name:
        return "connection_error"
    if "Incomplete" in name or "max_tokens" in text:
        return "max_tokens"
    if name in {"InstructorRetryException", "ValidationError", "JSONDecodeError"} or "validation" in text.lower():
        return "parse_error"
    return "error"


async def _score_one(metric_name: str, metric: Any, s: RagasSample) -> float:
    if metric_name == "answer_relevancy":
        r = await metric.ascore(user_input=s.question, response=s.answer)
    elif metric_name == "context_precision":
        r = await metric.ascore(user_input=s.question, reference=s.reference, retrieved_contexts=s.contexts)
    elif metric_name == "faithfulness":
        r = await metric.ascore(user_input=s.question, response=s.answer, retrieved_contexts=s.contexts)
    else:
        r = await metric.ascore(reference=s.reference, response=s.answer)
    return float(r.value)


@dataclass
class RagasReport:
    """All scores of a RAGAS run and the judge configuration that produced them."""

    scores: list[RagasScore]
    config: dict[str, Any]
    seconds: float = 0.0

    def summary(self) -> dict[str, dict[str, Any]]:
        return summarize_scores(self.scores)

    def values(self, metric: str) -> dict[str, float]:
        """``{sample_id: value}`` for one metric (NaN kept)."""
        return {s.sample_id: s.value for s in self.scores if s.metric == metric}

    def table(self) -> str:
        """A small text table: metric, valid/total, NaN reasons, mean of the valid scores."""
        lines = [f"{'metric':18} {'valid':>7}  {'mean (valid only)':>17}  failures"]
        for m, s in self.summary().items():
            fails = ", ".join(f"{k} {v}" for k, v in s["by_status"].items() if k != "ok") or "-"
            mean = "n/a" if s["n_ok"] == 0 else f"{s['mean_ok']:.3f}"
            lines.append(f"{m:18} {s['n_ok']:>3}/{s['n']:<3}  {mean:>17}  {fails}")
        return "\n".join(lines)


def summarize_scores(scores: Sequence[RagasScore]) -> dict[str, dict[str, Any]]:
    """Per metric: ``n``, ``n_ok``, ``n_nan``, ``by_status`` counts, ``coverage`` and ``mean_ok``.

    ``mean_ok`` is the mean over valid scores only and is NaN when there are none; read
    it together with ``coverage`` (share of samples that produced a score).

    Example:
        >>> out = summarize_scores([RagasScore("a", "m", 1.0), RagasScore("b", "m", float("nan"), "nan")])
        >>> out["m"]["mean_ok"], out["m"]["coverage"]
        (1.0, 0.5)
    """
    by_metric: dict[str, list[RagasScore]] = {}
    for s in scores:
        by_metric.setdefault(s.metric, []).append(s)
    out: dict[str, dict[str, Any]] = {}
    for m, items in by_metric.items():
        ok = [s.value for s in items if s.ok]
        statuses = Counter("nan" if (s.status == "ok" and math.isnan(s.value)) else s.status for s in items)
        out[m] = {"n": len(items), "n_ok": len(ok), "n_nan": len(items) - len(ok), "by_status": dict(statuses),
                  "coverage": len(ok) / len(items), "mean_ok": sum(ok) / len(ok) if ok else float("nan")}
    return out


def summarize_frame(frame: Any, metrics: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The same summary for a RAGAS ``EvaluationResult.to_pandas()`` frame (legacy ``evaluate`` API).

    Example:
        >>> import pandas as pd
        >>> summarize_frame(pd.DataFrame({"faithfulness": [float("nan"), 0.5]}), ["faithfulness"])["faithfulness"]["n_nan"]
        1
    """
    missing = [m for m in metrics if m not in frame.columns]
    if missing:
        raise InputError(f"the result has no column(s) {missing}: the metric did not run at all")
    scores = [RagasScore(str(i), m, float(v) if v is not None else float("nan"),
                         "ok" if v is not None and not math.isnan(float(v)) else "nan")
              for m in metrics for i, v in enumerate(frame[m].tolist())]
    return summarize_scores(scores)


def run_ragas(
    samples: Sequence[RagasSample], *, config: RagasJudgeConfig | None = None, embeddings: Any | None = None,
    metrics: Sequence[str] = RAGAS_METRICS, progress: bool = True,
    llm_builder: Callable[[RagasJudgeConfig], Any] = build_ragas_llm,
) -> RagasReport:
    """Score ``samples`` with RAGAS metrics; failures become NaN with a reason, never an exception.

    Everything runs in one event loop on a worker thread (so it also works inside
    Jupyter, whose loop is already running). Each score is limited to
    ``config.timeout_s`` seconds of wall-clock time.

    Raises:
        ConfigurationError: LLM metrics requested without a judge ``config``.
    """
    if not samples:
        raise InputError("no samples to score")
    if any(m in LLM_METRICS for m in metrics) and config is None:
        raise ConfigurationError("LLM metrics need an explicit judge config: judge_config(LabServer().base_url)")
    timeout = config.timeout_s if config is not None else 60.0
    scores: list[RagasScore] = []
    box: dict[str, BaseException] = {}

    async def main() -> None:
        llm = llm_builder(config) if config is not None and any(m in LLM_METRICS for m in metrics) else None
        built = build_metrics(metrics, llm, embeddings)
        total = len(samples) * len(built)
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=total, desc="ragas", leave=False)
        for s in samples:
            for name, metric in built.items():
                start = time.perf_counter()
                try:
                    value = await asyncio.wait_for(_score_one(name, metric, s), timeout=timeout)
                    status, detail = ("ok", "") if not math.isnan(value) else ("nan", "RAGAS returned NaN")
                except Exception as exc:  # noqa: BLE001 - every failure is recorded, none is hidden
                    value, status, detail = float("nan"), classify_error(exc), f"{type(exc).__name__}: {str(exc)[:160]}"
                scores.append(RagasScore(s.id, name, value, status, detail, time.perf_counter() - start))
                if bar is not None:
                    bar.update(1)
        if bar is not None:
            bar.close()

    def runner() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    started = time.perf_counter()
    thread = threading.Thread(target=runner, name="ragas-eval")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    cfg: Mapping[str, Any] = config.public() if config is not None else {}
    return RagasReport(scores, {**cfg, "metrics": list(metrics)}, time.perf_counter() - started)
