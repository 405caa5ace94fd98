"""Settings read from the environment, and the choice of provider they imply.

Every knob has an environment variable (prefix ``LAB_`` except the OpenAI ones,
which use the names the OpenAI SDK already reads)::

    OPENAI_API_KEY      set it to use OpenAI (never printed: stored as SecretStr)
    OPENAI_BASE_URL     any OpenAI-compatible server (vLLM, TGI, Ollama, LM Studio, the lab's own)
    LAB_PROVIDER        auto (default) | local | openai | compatible | fake
    LAB_CHAT_MODEL      model name for remote providers (default gpt-4o-mini for openai)
    LAB_EMBED_MODEL     embedding model for remote providers (default text-embedding-3-small)
    LAB_LOCAL_BACKEND   auto (default) | llama_cpp | transformers
    LAB_THREADS         CPU threads for the local model (default: all cores)
    LAB_TIMEOUT_S       request timeout for remote providers (default 60)
    LAB_MAX_RETRIES     retries on 429/5xx/timeouts (default 3)

Example:
    >>> Settings(provider="fake").resolved_provider()
    'fake'
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ProviderName = Literal["local", "openai", "compatible", "fake"]

#: The OpenAI API, used when a key is set and no base URL is (an empty OPENAI_BASE_URL counts as unset).
OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"
#: Name under which the lab serves and reports its default local chat model.
LOCAL_CHAT_MODEL = "smollm2-135m-instruct"
#: Name under which the lab serves and reports its default local embedding model.
LOCAL_EMBED_MODEL = "all-minilm-l6-v2"


class Settings(BaseSettings):
    """Lab settings; construct with keyword arguments in tests, from env elsewhere."""

    # env_ignore_empty: `OPENAI_API_KEY=` (set but empty) means "no key", as a person would expect.
    model_config = SettingsConfigDict(env_prefix="LAB_", extra="ignore", populate_by_name=True,
                                      env_ignore_empty=True)

    provider: Literal["auto", "local", "openai", "compatible", "fake"] = "auto"
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_KEY", "openai_api_key")
    )
    openai_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_BASE_URL", "openai_base_url")
    )
    chat_model: str | None = None
    embed_model: str | None = None
    local_backend: Literal["auto", "llama_cpp", "transformers"] = "auto"
    threads: int = Field(default_factory=lambda: max(1, os.cpu_count() or 1), ge=1)
    context_tokens: int = Field(default=4096, ge=256)
    timeout_s: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=3, ge=0, le=10)

    def resolved_provider(self) -> ProviderName:
        """The provider ``auto`` stands for: a base URL wins, then a key, else local."""
        if self.provider != "auto":
            return self.provider
        if self.openai_base_url:
            return "compatible"
        if self.openai_api_key is not None and self.openai_api_key.get_secret_value():
            return "openai"
        return "local"

    def describe(self) -> str:
        """One line naming the active provider, safe to print (no secrets)."""
        provider = self.resolved_provider()
        if provider == "local":
            return f"local ({LOCAL_CHAT_MODEL}, offline)"
        if provider == "compatible":
            return f"compatible server at {self.openai_base_url} (model {self.chat_model or '?'})"
        if provider == "openai":
            return f"openai (model {self.chat_model or 'gpt-4o-mini'}; key set, not shown)"
        return "fake (scripted responses)"


def get_settings() -> Settings:
    """Read settings from the environment now (cheap; not cached, so tests can patch env)."""
    return Settings()
