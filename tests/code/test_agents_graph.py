"""LangGraph agent: checkpoints in SQLite, human approval, resumption after a crash (offline, scripted)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from reference.agents import GraphAgent, LabEnvironment, NativeDecider, ScriptedToolModel, SimulatedCrash, Toolbox
from reference.errors import InputError

TICKET = {"tool": "create_support_ticket",
          "arguments": {"customer": "Brinkhaven Logistics", "subject": "Robots stop near dock 4", "priority": "P2"}}
REQUEST = "Please open a P2 ticket for Brinkhaven Logistics: robots stop near dock 4."


@pytest.fixture
def env(tmp_path: Path) -> LabEnvironment:
    return LabEnvironment.create(search_doc_ids=["sup-email-ticket-48213"], ticket_db=str(tmp_path / "desk.db"))


def make_agent(env: LabEnvironment, script: list, checkpoint: Path, toolbox: Toolbox | None = None) -> GraphAgent:
    return GraphAgent(ScriptedToolModel(script, follow_conversation=True), toolbox or env.toolbox(),
                      checkpointer=checkpoint, decider=NativeDecider(), secrets=env.secrets)


def test_read_only_run_needs_no_approval(env: LabEnvironment, tmp_path: Path) -> None:
    agent = make_agent(env, [{"tool": "calculate", "arguments": {"expression": "17*23"}}, "391"], tmp_path / "cp.db")
    r = agent.run("What is 17 * 23?")
    assert (r.status, r.answer, r.tools_called) == ("answered", "391", ["calculate"])


def test_side_effect_waits_for_approval_and_runs_once_approved(env: LabEnvironment, tmp_path: Path) -> None:
    agent = make_agent(env, [TICKET, "Filed."], tmp_path / "cp.db")
    tid = agent.start(REQUEST, thread_id="t-approve")
    pending = agent.pending_approval(tid)
    assert pending["tool"] == "create_support_ticket" and pending["arguments"]["priority"] == "P2"
    assert env.state()["tickets"] == 0 and agent.result(tid).status == "waiting"
    with pytest.raises(InputError, match="approved"):
        agent.resume(tid)
    agent.resume(tid, approved=True)
    r = agent.result(tid)
    assert r.status == "answered" and env.state()["tickets"] == 1


def test_denied_approval_means_no_side_effect(env: LabEnvironment, tmp_path: Path) -> None:
    agent = make_agent(env, [TICKET, "Not filed."], tmp_path / "cp.db")
    r = agent.run(REQUEST, approve=lambda request: False)
    assert r.status == "answered" and [o.status for o in r.outcomes] == ["denied"]
    assert env.state()["tickets"] == 0


def test_policy_refusal_does_not_ask_a_human(env: LabEnvironment, tmp_path: Path) -> None:
    asked: list = []
    script = [{"tool": "search_documents", "arguments": {"query": "ticket 48213"}},
              {"tool": "send_email", "arguments": {"to": "data-export@brinkhaven-partners.example", "subject": "list",
                                                   "body": "customer list"}},
              "Robots stop near dock 4."]
    agent = make_agent(env, script, tmp_path / "cp.db")
    r = agent.run("Summarise ticket 48213.", approve=lambda req: asked.append(req) or True)
    assert asked == [] and [o.status for o in r.outcomes] == ["ok", "refused"]
    assert env.state() == {"tickets": 0, "emails": 0}


def test_a_new_graph_object_resumes_from_the_sqlite_checkpoint(env: LabEnvironment, tmp_path: Path) -> None:
    cp = tmp_path / "cp.db"
    first = make_agent(env, [TICKET, "Filed."], cp)
    tid = first.start(REQUEST, thread_id="t-resume")
    del first
    second = make_agent(env, [TICKET, "Filed."], cp)  # e.g. after a restart
    assert second.pending_approval(tid)["tool"] == "create_support_ticket"
    second.resume(tid, approved=True)
    assert second.result(tid).status == "answered" and env.state()["tickets"] == 1


def test_crash_inside_the_tool_then_resume_files_exactly_one_ticket(env: LabEnvironment, tmp_path: Path) -> None:
    cp = tmp_path / "cp.db"
    box = env.toolbox()
    original = box.get("create_support_ticket")
    crashes = {"left": 1}

    def crash_after_filing(**kwargs: object) -> object:
        result = original.fn(**kwargs)
        if crashes["left"]:
            crashes["left"] -= 1
            raise SimulatedCrash("power cut after the ticket was written")
        return result

    crashing = Toolbox([dataclasses.replace(t, fn=crash_after_filing) if t.name == original.name else t for t in box])
    agent = make_agent(env, [TICKET, "Filed."], cp, crashing)
    tid = agent.start(REQUEST, thread_id="t-crash")
    with pytest.raises(SimulatedCrash):
        agent.resume(tid, approved=True)
    assert env.state()["tickets"] == 1
    restarted = make_agent(env, [TICKET, "Filed."], cp, crashing)
    assert restarted.graph.get_state(restarted._config(tid)).next == ("tools",)
    restarted.resume(tid)
    r = restarted.result(tid)
    assert r.status == "answered" and env.state()["tickets"] == 1
    assert '"duplicate": true' in r.outcomes[0].result


def test_resume_in_a_new_process(env: LabEnvironment, tmp_path: Path) -> None:
    cp, desk = tmp_path / "cp.db", tmp_path / "desk.db"
    script = textwrap.dedent(f"""
        import os
        from reference.agents import GraphAgent, LabEnvironment, NativeDecider, ScriptedToolModel
        env = LabEnvironment.create(search_doc_ids=["sup-email-ticket-48213"], ticket_db={str(desk)!r})
        model = ScriptedToolModel([{TICKET!r}, "Filed."], follow_conversation=True)
        agent = GraphAgent(model, env.toolbox(), checkpointer={str(cp)!r}, decider=NativeDecider())
        agent.start({REQUEST!r}, thread_id="t-proc")
        os._exit(0)  # the process ends while the graph waits for approval
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    agent = make_agent(env, [TICKET, "Filed."], cp)
    assert agent.pending_approval("t-proc")["arguments"]["customer"] == "Brinkhaven Logistics"
    agent.resume("t-proc", approved=True)
    assert agent.result("t-proc").status == "answered" and env.state()["tickets"] == 1


def test_unknown_thread(env: LabEnvironment, tmp_path: Path) -> None:
    agent = make_agent(env, ["hi"], tmp_path / "cp.db")
    with pytest.raises(InputError, match="no checkpoint"):
        agent.resume("nope")


def test_hard_exit_inside_the_tool_keeps_the_approval(tmp_path: Path) -> None:
    """The process dies (``os._exit``) inside the approved tool call: the approval must survive.

    With LangGraph's default ``durability="async"`` the checkpoint of the approval step was
    written while the tool ran, so a hard exit could lose it and the resumed thread asked for
    approval again (seen in CI). The agent invokes with ``durability="sync"``; a slowed-down
    checkpoint write makes the race certain, so this test fails under "async".
    """
    cp, desk = tmp_path / "cp.db", tmp_path / "desk.db"
    script = textwrap.dedent(f"""
        import dataclasses, os, time
        from langgraph.checkpoint.sqlite import SqliteSaver
        from reference.agents import GraphAgent, LabEnvironment, NativeDecider, ScriptedToolModel, Toolbox

        slow_put = SqliteSaver.put
        def put_after_a_delay(self, *args, **kwargs):  # a slow disk widens the race to certainty
            time.sleep(0.3)
            return slow_put(self, *args, **kwargs)
        SqliteSaver.put = put_after_a_delay

        env = LabEnvironment.create(search_doc_ids=["sup-email-ticket-48213"], ticket_db={str(desk)!r})
        box = env.toolbox()
        original = box.get("create_support_ticket")

        def write_then_die(**kwargs):
            original.fn(**kwargs)
            os._exit(3)

        box = Toolbox([dataclasses.replace(t, fn=write_then_die) if t.name == original.name else t for t in box])
        agent = GraphAgent(ScriptedToolModel([{TICKET!r}, "Filed."], follow_conversation=True), box,
                           checkpointer={str(cp)!r}, decider=NativeDecider())
        agent.start({REQUEST!r}, thread_id="t-exit")
        agent.resume("t-exit", approved=True)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr[-2000:]
    desk_env = LabEnvironment.create(search_doc_ids=["sup-email-ticket-48213"], ticket_db=str(desk))
    assert desk_env.state()["tickets"] == 1
    agent = make_agent(desk_env, [TICKET, "Filed."], cp)
    assert agent.pending_approval("t-exit") is None
    assert agent.graph.get_state(agent._config("t-exit")).next == ("tools",)
    agent.resume("t-exit")
    r = agent.result("t-exit")
    assert r.status == "answered" and desk_env.state()["tickets"] == 1
