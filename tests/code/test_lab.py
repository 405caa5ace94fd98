"""`make lab` serves JupyterLab on localhost, guarded by a token, with announcements off."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time

import httpx

from reference.__main__ import lab_command
from reference.serve import free_port


def test_jupyterlab_starts_serves_and_stops(tmp_path):
    port = free_port()
    token = secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_TOKEN=token, JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"))
    cmd = lab_command(port, no_browser=True)
    assert cmd[:4] == [sys.executable, "-m", "jupyter", "lab"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        page = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/lab?token={token}", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.5)
        assert page is not None, "JupyterLab did not start:\n" + (proc.stdout.read() if proc.poll() is not None else "")
        assert page.status_code == 200 and "JupyterLab" in page.text
        assert "@jupyterlab/apputils-extension:announcements" in page.text, "announcements plugin not disabled"
        anonymous = httpx.get(f"http://127.0.0.1:{port}/api/contents", timeout=5)
        assert anonymous.status_code == 403, "the lab must not be usable without its token"
        listing = httpx.get(f"http://127.0.0.1:{port}/api/contents/notebooks?token={token}", timeout=5).json()
        assert {item["name"] for item in listing["content"]} >= {"00_setup", "01_foundations"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert proc.returncode is not None
