"""`python -m reference doctor` checks the installation end to end."""

from __future__ import annotations

import os
import subprocess
import sys


def run_doctor(**env: str) -> subprocess.CompletedProcess:
    full = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-m", "reference", "doctor"], env=full, capture_output=True,
                          text=True, timeout=300)


def test_doctor_passes_on_the_local_setup():
    result = run_doctor(LAB_PROVIDER="local", OPENAI_API_KEY="", OPENAI_BASE_URL="")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All good." in result.stdout and "chat model" in result.stdout and "embeddings" in result.stdout


def test_doctor_fails_clearly_and_never_prints_the_key():
    key = "sk-doctor-test-secret-0123456789"
    result = run_doctor(LAB_PROVIDER="auto", OPENAI_API_KEY=key, OPENAI_BASE_URL="http://127.0.0.1:9/v1",
                        LAB_CHAT_MODEL="nothing-here", LAB_MAX_RETRIES="0", LAB_TIMEOUT_S="2")
    assert result.returncode == 1
    assert "PROBLEMS" in result.stdout and "cannot connect" in result.stdout
    assert key not in result.stdout + result.stderr
