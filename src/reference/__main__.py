"""Command line: ``python -m reference doctor | serve | lab``.

* ``doctor``: versions, active provider, local model and embeddings answering, offline
  settings; exits 1 with a message naming the fix when something is wrong.
* ``serve``: the OpenAI-compatible server (:mod:`reference.serve`) on a port.
* ``lab``: JupyterLab on ``notebooks/`` with the lab's offline settings.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ["torch", "transformers", "sentence-transformers", "llama-cpp-python", "openai", "langchain",
            "llama-index-core", "qdrant-client", "ragas", "peft", "jupyterlab", "nbval"]


def _version(name: str) -> str:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return "not installed"


def doctor() -> int:
    """Print the state of the lab and return a process exit code."""
    from reference.config import get_settings  # noqa: PLC0415
    from reference.errors import LabError  # noqa: PLC0415

    problems: list[str] = []
    print(f"python        {platform.python_version()} ({sys.executable})")
    for name in PACKAGES:
        print(f"{name:<22}{_version(name)}")
    try:
        settings = get_settings()
    except Exception as exc:  # noqa: BLE001 - pydantic validation of env vars
        print(f"settings      INVALID: {exc}")
        return 1
    print(f"provider      {settings.describe()}")
    offline = {k: os.environ.get(k, "") for k in ("HF_HUB_OFFLINE", "TIKTOKEN_CACHE_DIR", "RAGAS_DO_NOT_TRACK")}
    for key, value in offline.items():
        print(f"offline       {key}={value or 'UNSET'}")
        if not value:
            problems.append(f"{key} is not set: import reference before other libraries")
    try:
        import tiktoken  # noqa: PLC0415

        n = len(tiktoken.get_encoding("cl100k_base").encode("offline check"))
        print(f"tiktoken      cl100k_base loads offline ({n} tokens)")
    except Exception as exc:  # noqa: BLE001
        problems.append(f"tiktoken cannot load its encoding offline: {exc}")
    try:
        from reference.llm import get_chat_model  # noqa: PLC0415

        start = time.perf_counter()
        llm = get_chat_model()
        load = time.perf_counter() - start
        r = llm.chat([{"role": "user", "content": "What is the capital of France? One word."}], max_tokens=8)
        print(f"chat model    {type(llm).__name__} {llm.model}: loaded in {load:.1f}s, "
              f"answered {r.text.strip()!r} in {r.latency_s:.2f}s")
    except (LabError, ImportError, OSError) as exc:
        problems.append(f"chat model: {exc}")
    try:
        from reference.embeddings import cosine_similarity, get_embedder  # noqa: PLC0415

        emb = get_embedder()
        v = emb.embed(["a robot carries boxes", "a machine moves parcels", "the cat sleeps"])
        sims = cosine_similarity(v[:1], v[1:])[0]
        print(f"embeddings    {emb.model} dim={emb.dim}: related {sims[0]:.2f} vs unrelated {sims[1]:.2f}")
        if not sims[0] > sims[1]:
            problems.append("embeddings rank an unrelated sentence above a related one")
    except (LabError, ImportError, OSError) as exc:
        problems.append(f"embeddings: {exc}")
    if problems:
        print("\nPROBLEMS:")
        for p in problems:
            print(f"  - {p}")
        return 1
    print("\nAll good.")
    return 0


def lab_command(port: int | None, no_browser: bool) -> list[str]:
    """The JupyterLab command line ``make lab`` runs (a random token guards it)."""
    cmd = [sys.executable, "-m", "jupyter", "lab", f"--notebook-dir={REPO}",
           "--ServerApp.ip=127.0.0.1", "--ServerApp.default_url=/lab/tree/notebooks",
           # nothing reaches for the internet: no news, no update check, no PyPI extension search
           "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.extension_manager=readonly"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers and CI run as root
    if port:
        cmd.append(f"--ServerApp.port={port}")
    if no_browser:
        cmd.append("--no-browser")
    return cmd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reference")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("doctor", help="check the installation and the models")
    sub.add_parser("serve", help="run the OpenAI-compatible server (options: python -m reference.serve --help)",
                   add_help=False)
    lab = sub.add_parser("lab", help="open JupyterLab on the notebooks")
    lab.add_argument("--port", type=int, default=None)
    lab.add_argument("--no-browser", action="store_true")
    args, rest = parser.parse_known_args(argv)
    if args.command == "serve":
        from reference.serve import main as serve_main  # noqa: PLC0415

        return serve_main(rest)
    if rest:
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    if args.command == "doctor":
        return doctor()
    return subprocess.call(lab_command(args.port, args.no_browser))


if __name__ == "__main__":
    sys.exit(main())
