"""Offline guarantees: the socket guard, and libraries that would otherwise download."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

GUARD = Path(__file__).resolve().parents[2] / "tools" / "offline_guard"


def run_guarded(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(GUARD), LAB_NETWORK_LOG=str(tmp_path / "net.log"))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_guard_blocks_remote_hosts_and_logs_the_caller(tmp_path):
    code = (
        "import socket\n"
        "try:\n    socket.create_connection(('example.com', 80), timeout=1)\n"
        "except OSError as e:\n    print('blocked' if 'offline guard' in str(e) else 'other:' + str(e))\n"
        "try:\n    socket.create_connection(('93.184.216.34', 80), timeout=1)\n"
        "except OSError as e:\n    print('blocked' if 'offline guard' in str(e) else 'other:' + str(e))\n"
    )
    result = run_guarded(code, tmp_path)
    assert result.stdout.split() == ["blocked", "blocked"], result.stderr
    log = (tmp_path / "net.log").read_text()
    assert "example.com" in log and "93.184.216.34" in log


def test_guard_allows_loopback(tmp_path):
    code = (
        "import socket\n"
        "srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(1)\n"
        "c = socket.create_connection(('127.0.0.1', srv.getsockname()[1]), timeout=2)\n"
        "c2 = socket.create_connection(('localhost', srv.getsockname()[1]), timeout=2)\n"
        "print('ok')\n"
    )
    result = run_guarded(code, tmp_path)
    assert result.stdout.strip() == "ok", result.stderr


def test_tiktoken_and_nltk_data_resolve_offline(tmp_path):
    code = (
        "import reference, os, tiktoken\n"
        "enc = tiktoken.get_encoding('cl100k_base')\n"
        "print(len(enc.encode('hello world')))\n"
        "print(tiktoken.get_encoding('o200k_base').name)\n"
        "print(os.path.isdir(os.environ['NLTK_DATA']))\n"
    )
    result = run_guarded(code, tmp_path)
    assert result.stdout.split() == ["2", "o200k_base", "True"], result.stderr
    assert not (tmp_path / "net.log").exists()


def test_importing_frameworks_does_not_reach_out(tmp_path):
    code = (
        "import reference\n"
        "import ragas, langchain_openai, llama_index.core, qdrant_client, sentence_transformers\n"
        "from llama_index.core.node_parser import SentenceSplitter\n"
        "print(len(SentenceSplitter(chunk_size=64, chunk_overlap=8).split_text('word ' * 300)) > 1)\n"
    )
    result = run_guarded(code, tmp_path)
    assert result.stdout.strip().endswith("True"), result.stderr[-2000:]
    log = tmp_path / "net.log"
    assert not log.exists(), log.read_text()[:2000]
