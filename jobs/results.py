"""Plain values the provider lane hands to the services: no SDK types cross this line."""

from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cost: Decimal = Decimal("0")
    price_version: str = ""


@dataclass(frozen=True)
class AttemptOutcome:
    """What one attempt ended with, in product terms.

    ``status`` is ``completed``, ``incomplete``, ``failed`` or ``canceled``. For failures,
    ``failure_kind`` and ``retryable`` come from the provider adapter's classification.
    """

    status: str
    text: str = ""
    output: list | dict | None = None
    usage: Usage = field(default_factory=Usage)
    provider_status: str = ""
    model: str = ""
    service_tier: str = ""
    request_id: str = ""
    failure_kind: str = ""
    retryable: bool = False
    error_code: str = ""
    error_message: str = ""
    retry_after: float | None = None
    # completed responses: seconds the provider worked, by its own clock (None if unknown)
    provider_seconds: float | None = None
