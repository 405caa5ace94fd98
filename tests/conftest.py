"""Shared test set-up: unit tests never see the developer's real provider settings."""

from __future__ import annotations

import pytest

_PROVIDER_ENV = ["OPENAI_API_KEY", "OPENAI_BASE_URL", "LAB_PROVIDER", "LAB_CHAT_MODEL", "LAB_EMBED_MODEL",
                 "LAB_LOCAL_BACKEND", "LAB_TIMEOUT_S", "LAB_MAX_RETRIES"]


@pytest.fixture(autouse=True)
def _isolated_provider_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _PROVIDER_ENV:
        monkeypatch.delenv(name, raising=False)
