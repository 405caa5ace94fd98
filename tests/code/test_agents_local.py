"""Integration: the real local model (SmolLM2-135M via llama.cpp) with constrained tool calls."""

from __future__ import annotations

import pytest

from reference.agents import ConstrainedDecider, LabEnvironment, load_agent_tasks
from reference.agents.tasks import measure_tool_call
from reference.llm import get_chat_model, llama_cpp_available

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not llama_cpp_available(), reason="llama-cpp-python is not installed")]


def test_constrained_decoding_gives_valid_calls_from_the_local_model() -> None:
    llm = get_chat_model("local")
    box = LabEnvironment.create(search_doc_ids=["sup-nb-error-codes"]).toolbox()
    tasks = {t.id: t for t in load_agent_tasks()}
    for tid in ("at-014", "at-092"):  # single-tool tasks: one grammar-constrained call each
        check = measure_tool_call(tasks[tid], llm, ConstrainedDecider(), box)
        assert check.valid, (tid, check.raw, check.error)
        assert check.tool in tasks[tid].allowed_tools
