"""The lab's exception tree: few classes, each message naming the fix.

    LabError
    ├── ConfigurationError      settings are missing or contradict each other
    ├── InputError              the caller passed something we refuse to process
    │   ├── EmptyInputError
    │   ├── InputTooLargeError
    │   └── DataFileError       a shipped or user data file is missing or malformed
    ├── OutputParseError        a model answered, but not in the shape we asked for
    └── ProviderError           a model provider failed (never carries the API key)
        ├── AuthenticationError
        ├── ModelNotFoundError
        ├── RateLimitError
        ├── ProviderTimeoutError
        └── ProviderUnavailableError

Catch ``LabError`` to handle everything the lab raises on purpose; anything else
is a bug worth reporting.
"""

from __future__ import annotations


class LabError(Exception):
    """Base class for every error the lab raises deliberately."""


class ConfigurationError(LabError):
    """Settings are missing, malformed or inconsistent."""


class InputError(LabError, ValueError):
    """The caller passed input the lab refuses to process."""


class EmptyInputError(InputError):
    """An input that must have content is empty."""


class InputTooLargeError(InputError):
    """An input exceeds a configured size limit."""


class DataFileError(InputError):
    """A data file is missing, unreadable or does not match its schema."""


class OutputParseError(LabError):
    """A model replied, but the reply could not be parsed into the requested shape.

    Attributes:
        raw: the text the model produced (kept for debugging, never a secret).
    """

    def __init__(self, message: str, raw: str = "") -> None:
        super().__init__(message)
        self.raw = raw


class ProviderError(LabError):
    """A model provider (local or remote) failed to answer."""


class AuthenticationError(ProviderError):
    """The provider rejected the credentials."""


class ModelNotFoundError(ProviderError):
    """The provider does not serve the requested model."""


class RateLimitError(ProviderError):
    """The provider is throttling us (HTTP 429) and retries ran out."""


class ProviderTimeoutError(ProviderError):
    """The provider did not answer within the configured timeout."""


class ProviderUnavailableError(ProviderError):
    """The provider could not be reached or answered with a server error."""
