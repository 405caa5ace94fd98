"""Unit tests for reference.evals.ragas_eval: explicit judge config and NaN accounting (no model calls)."""

from __future__ import annotations

import math
import os

import pandas as pd
import pytest

from reference.config import Settings
from reference.errors import ConfigurationError, InputError
from reference.evals.ragas_eval import (
    LabRagasEmbeddings,
    RagasSample,
    RagasScore,
    classify_error,
    judge_config,
    run_ragas,
    summarize_frame,
    summarize_scores,
)


def test_tracking_is_disabled_before_ragas_is_imported():
    assert os.environ.get("RAGAS_DO_NOT_TRACK") == "true"


def test_no_implicit_openai_default():
    with pytest.raises(ConfigurationError, match="never allowed"):
        judge_config(settings=Settings(provider="local"))


def test_explicit_local_server_and_configured_provider():
    local = judge_config("http://127.0.0.1:9/v1", settings=Settings(provider="local"))
    assert local.base_url == "http://127.0.0.1:9/v1" and local.model == "smollm2-135m-instruct"
    real = judge_config(settings=Settings(provider="openai", openai_api_key="sk-test", chat_model="gpt-4o-mini"))
    assert real.base_url.startswith("https://api.openai.com") and "sk-test" not in str(real.public())
    assert "sk-test" not in repr(real)


def test_nan_scores_are_counted_not_averaged():
    scores = [
        RagasScore("a", "faithfulness", 0.8),
        RagasScore("b", "faithfulness", float("nan"), "nan"),
        RagasScore("c", "faithfulness", float("nan"), "timeout"),
        RagasScore("d", "faithfulness", float("nan"), "max_tokens"),
        RagasScore("a", "answer_relevancy", float("nan"), "parse_error"),
    ]
    s = summarize_scores(scores)
    assert s["faithfulness"]["n_ok"] == 1 and s["faithfulness"]["n_nan"] == 3
    assert s["faithfulness"]["mean_ok"] == 0.8 and s["faithfulness"]["coverage"] == 0.25
    assert s["faithfulness"]["by_status"] == {"ok": 1, "nan": 1, "timeout": 1, "max_tokens": 1}
    assert math.isnan(s["answer_relevancy"]["mean_ok"])


def test_an_ok_status_with_nan_value_counts_as_nan():
    s = summarize_scores([RagasScore("a", "m", float("nan"), "ok")])
    assert s["m"]["n_ok"] == 0 and s["m"]["by_status"] == {"nan": 1}


def test_summarize_frame_from_a_stubbed_evaluate_result():
    frame = pd.DataFrame({"faithfulness": [float("nan")] * 3 + [1.0], "answer_relevancy": [0.5, 0.7, None, 0.9]})
    out = summarize_frame(frame, ["faithfulness", "answer_relevancy"])
    assert out["faithfulness"]["n_nan"] == 3 and out["faithfulness"]["mean_ok"] == 1.0
    assert out["answer_relevancy"]["n_ok"] == 3
    with pytest.raises(InputError):
        summarize_frame(frame, ["context_precision"])


def test_classify_error():
    class IncompleteOutputException(Exception):
        pass

    class InstructorRetryException(Exception):
        pass

    assert classify_error(TimeoutError()) == "timeout"
    assert classify_error(IncompleteOutputException("max_tokens length limit")) == "max_tokens"
    assert classify_error(InstructorRetryException("x")) == "parse_error"
    assert classify_error(RuntimeError("boom")) == "error"
    assert classify_error(InstructorRetryException("Connection error.")) == "connection_error"


def test_run_ragas_needs_a_judge_for_llm_metrics():
    s = [RagasSample("a", "q", "ans", ["ctx"], "ref")]
    with pytest.raises(ConfigurationError):
        run_ragas(s, metrics=["faithfulness"], progress=False)


def test_run_ragas_records_failures_from_a_broken_judge():
    """A stub judge that fails: every LLM score becomes NaN with a reason, nothing raises."""

    class BrokenLLM:
        async def agenerate(self, prompt, response_model):
            raise TimeoutError("judge too slow")

        def generate(self, prompt, response_model):
            raise TimeoutError("judge too slow")

    from ragas.llms.base import InstructorBaseRagasLLM

    InstructorBaseRagasLLM.register(BrokenLLM)
    cfg = judge_config("http://127.0.0.1:9/v1", settings=Settings(provider="local"))
    samples = [RagasSample("a", "How long?", "3 years.", ["Tickets are kept for 3 years."], "3 years")]
    rep = run_ragas(samples, config=cfg, metrics=["context_precision", "string_similarity"], progress=False,
                    llm_builder=lambda c: BrokenLLM())
    summ = rep.summary()
    assert summ["context_precision"]["by_status"] == {"timeout": 1}
    assert summ["string_similarity"]["n_ok"] == 1 and 0.5 < summ["string_similarity"]["mean_ok"] <= 1.0
    assert "context_precision" in rep.table() and rep.config["metrics"] == ["context_precision", "string_similarity"]


def test_lab_embeddings_adapter():
    from ragas.embeddings.base import BaseRagasEmbedding

    from reference.embeddings import FakeEmbedder

    emb = LabRagasEmbeddings(FakeEmbedder(dim=16))
    assert isinstance(emb, BaseRagasEmbedding)
    assert len(emb.embed_texts(["a", "b"])) == 2 and len(emb.embed_text("a")) == 16
