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
class RequestedCall:
    """A ``function_call`` item of a response: the model asks Steward to run a tool."""

    call_id: str
    name: str
    arguments: str  # JSON text, as the model wrote it


@dataclass(frozen=True)
class Citation:
    """A source the answer cites (a ``url_citation`` annotation): the span of the answer it
    supports, as character offsets into the answer's text."""

    url: str
    title: str
    start: int
    end: int


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
    # a completed response that asks for tool calls is a step of a run, not its outcome
    tool_calls: tuple[RequestedCall, ...] = ()
    # what hosted tools found: the sources the answer cites, and the web searches made
    citations: tuple[Citation, ...] = ()
    searches: tuple[str, ...] = ()

    @property
    def is_step(self):
        return self.status == "completed" and bool(self.tool_calls)
