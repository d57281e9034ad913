"""The provider lane's only contact with OpenAI (real or the bundled fake: same code path).

Nothing outside this package imports ``openai``. It hands the rest of Steward plain values:
``Dispatch`` for an accepted create, ``Snapshot`` for a retrieve, ``AttemptOutcome`` for a
finished response, and ``ProviderError`` (with a failure kind) for anything that went wrong.
"""

from .adapter import (
    ContinuationRefused,
    Dispatch,
    InvalidWebhook,
    ProviderError,
    Snapshot,
    StreamChunk,
    cancel_response,
    continue_response,
    create_many,
    create_response,
    outcome_from_error,
    retrieve_many,
    run_foreground,
    stream_response,
    unwrap_webhook,
)
from .pricing import cost_of

__all__ = [
    "ContinuationRefused",
    "Dispatch",
    "InvalidWebhook",
    "ProviderError",
    "Snapshot",
    "StreamChunk",
    "cancel_response",
    "cost_of",
    "create_many",
    "continue_response",
    "create_response",
    "outcome_from_error",
    "retrieve_many",
    "run_foreground",
    "stream_response",
    "unwrap_webhook",
]
