"""Adapters so LangChain and LlamaIndex use the lab's embeddings (and the same Qdrant client).

Comparing frameworks is only fair when the embedding model and the vector store are
the same; these two small classes wrap any :mod:`reference.embeddings` embedder (or a
:class:`reference.retrieval.CachedEmbedder`) in each framework's embedding interface.

Example:
    >>> from reference.embeddings import FakeEmbedder
    >>> lc = LangChainEmbeddings(FakeEmbedder(dim=8))
    >>> len(lc.embed_query("hello"))
    8
"""

from __future__ import annotations

from typing import Any

from langchain_core.embeddings import Embeddings
from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import PrivateAttr

__all__ = ["LangChainEmbeddings", "LlamaIndexEmbedding", "documents_for_langchain", "documents_for_llamaindex"]


class LangChainEmbeddings(Embeddings):
    """LangChain ``Embeddings`` backed by a lab embedder."""

    def __init__(self, embedder: Any) -> None:
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.embed(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embedder.embed([text])[0].tolist()


class LlamaIndexEmbedding(BaseEmbedding):
    """LlamaIndex ``BaseEmbedding`` backed by a lab embedder.

    Example:
        >>> from reference.embeddings import FakeEmbedder
        >>> len(LlamaIndexEmbedding(FakeEmbedder(dim=4)).get_query_embedding("hi"))
        4
    """

    _embedder: Any = PrivateAttr()

    def __init__(self, embedder: Any, **kwargs: Any) -> None:
        super().__init__(model_name=str(getattr(embedder, "model", "lab-embedder")), embed_batch_size=64, **kwargs)
        self._embedder = embedder

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embedder.embed([query])[0].tolist()

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embedder.embed([text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embedder.embed(list(texts)).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)


def documents_for_langchain(pages: Any) -> list[Any]:
    """Lab :class:`reference.ingest.Page` objects as LangChain ``Document`` objects (metadata kept)."""
    from langchain_core.documents import Document

    return [Document(page_content=p.text, metadata={k: v for k, v in p.metadata.items() if v is not None})
            for p in pages]


def documents_for_llamaindex(pages: Any) -> list[Any]:
    """Lab pages as LlamaIndex ``Document`` objects (metadata kept, not embedded)."""
    from llama_index.core import Document

    out = []
    for p in pages:
        meta = {k: (", ".join(v) if isinstance(v, list) else v) for k, v in p.metadata.items() if v is not None}
        out.append(Document(text=p.text, metadata=meta, excluded_embed_metadata_keys=list(meta),
                            excluded_llm_metadata_keys=list(meta)))
    return out
