"""Make every library the lab uses work without the internet.

Imported by ``reference/__init__.py``, so importing anything from the package first
sets these (only where the user has not set them already):

* Hugging Face hub, transformers, datasets: offline mode and no telemetry;
* tiktoken: its encodings are read from the files llama-index ships
  (``llama_index/core/_static/tiktoken_cache``) instead of being downloaded;
* NLTK: data from llama-index's ``_static/nltk_cache``;
* RAGAS, Chroma and generic ``DO_NOT_TRACK`` telemetry: off;
* LangSmith tracing: off unless the user turns it on.

Example:
    >>> import reference.offline as off
    >>> off.configure_offline()["HF_HUB_OFFLINE"]
    '1'
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

_DEFAULTS = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "DO_NOT_TRACK": "1",
    "RAGAS_DO_NOT_TRACK": "true",
    "ANONYMIZED_TELEMETRY": "False",
    "LANGCHAIN_TRACING_V2": "false",
    "LANGSMITH_TRACING": "false",
    "TOKENIZERS_PARALLELISM": "false",
}


def llama_index_static_dir() -> Path | None:
    """Folder of data files shipped inside the llama-index-core wheel, if installed."""
    try:
        spec = importlib.util.find_spec("llama_index.core")
    except ModuleNotFoundError:  # llama_index itself is not installed (e.g. a slim API image)
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    static = Path(next(iter(spec.submodule_search_locations))) / "_static"
    return static if static.is_dir() else None


def configure_offline() -> dict[str, str]:
    """Set offline defaults in ``os.environ`` (existing values win) and return them."""
    applied: dict[str, str] = {}
    for key, value in _DEFAULTS.items():
        applied[key] = os.environ.setdefault(key, value)
    static = llama_index_static_dir()
    if static is not None:
        tik = static / "tiktoken_cache"
        if tik.is_dir():
            applied["TIKTOKEN_CACHE_DIR"] = os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(tik))
        nltk = static / "nltk_cache"
        if nltk.is_dir():
            applied["NLTK_DATA"] = os.environ.setdefault("NLTK_DATA", str(nltk))
    return applied
