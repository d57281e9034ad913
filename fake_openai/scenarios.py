"""Per-response scenarios read from request ``metadata``, and the deterministic fake "model".

Everything a test wants to provoke for one response travels in ``metadata`` (string values
only, as the real API demands), so the code under test needs no special hooks: it only has to
pass through the metadata it was given. The keys are listed in ``SCENARIO_KEYS`` and documented
in the package docstring. The output text is a pure function of the input text so that
replays, resumed streams and retries all see the same bytes.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass

from .answers import plausible_answer

DEFAULT_DURATION = 0.5
DEFAULT_CHUNK_CHARS = 24

# ResponseErrorCode in the reference spec: anything else would make a failed response invalid.
ERROR_CODES = frozenset(
    {
        "server_error",
        "rate_limit_exceeded",
        "invalid_prompt",
        "data_residency_mismatch",
        "bio_policy",
        "vector_store_timeout",
        "invalid_image",
        "invalid_image_format",
        "invalid_base64_image",
        "invalid_image_url",
        "image_too_large",
        "image_too_small",
        "image_parse_error",
        "image_content_policy_violation",
        "invalid_image_mode",
        "image_file_too_large",
        "unsupported_image_media_type",
        "empty_image_file",
        "failed_to_download_image",
        "image_file_not_found",
    }
)
INCOMPLETE_REASONS = frozenset({"max_output_tokens", "content_filter"})
# Non-numeric tokens allowed in fake_create_errors / fake_retrieve_errors.
ERROR_TOKENS = frozenset({"insufficient_quota", "reset", "malformed"})

SCENARIO_KEYS = (
    "fake_duration",
    "fake_queued_for",
    "fake_outcome",
    "fake_output_chars",
    "fake_chunk_chars",
    "fake_create_errors",
    "fake_retrieve_errors",
    "fake_retry_after",
    "fake_stream_drop_after",
    "fake_cached_tokens",
    "fake_reasoning_tokens",
    "fake_tool_plan",
    "fake_reject_continuation",
)
# Values of fake_reject_continuation: which continuations the "provider" refuses.
REJECT_CONTINUATION = frozenset({"background"})


class ScenarioError(ValueError):
    """A malformed scenario key; reported to the client as a 400 on ``metadata``."""


@dataclass(frozen=True, slots=True)
class Scenario:
    duration: float = DEFAULT_DURATION
    queued_for: float = DEFAULT_DURATION * 0.2
    outcome: str = "completed"  # completed | failed | incomplete
    outcome_explicit: bool = False
    error_code: str | None = None
    incomplete_reason: str | None = None
    output_chars: int | None = None
    chunk_chars: int = DEFAULT_CHUNK_CHARS
    create_errors: tuple[str, ...] = ()
    retrieve_errors: tuple[str, ...] = ()
    retry_after: float | None = None
    stream_drop_after: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    # Function-call steps (names per step); None: one step per offered function tool.
    tool_plan: tuple[tuple[str, ...], ...] | None = None
    reject_continuation: str | None = None


def _number(meta: dict, key: str, cast, minimum: float):
    raw = meta.get(key)
    if raw is None:
        return None
    try:
        value = cast(raw)
    except (TypeError, ValueError):
        raise ScenarioError(f"metadata[{key!r}] must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value < minimum:
        raise ScenarioError(f"metadata[{key!r}] must be >= {minimum}, got {raw!r}")
    return value


def _error_list(meta: dict, key: str) -> tuple[str, ...]:
    raw = meta.get(key)
    if not raw:
        return ()
    tokens = tuple(t.strip().lower() for t in str(raw).split(",") if t.strip())
    for token in tokens:
        if token in ERROR_TOKENS:
            continue
        if not (token.isdigit() and 400 <= int(token) <= 599):
            raise ScenarioError(
                f"metadata[{key!r}]: {token!r} is neither an HTTP status 400-599 nor one of "
                f"{sorted(ERROR_TOKENS)}"
            )
    return tokens


def _tool_plan(meta: dict) -> tuple[tuple[str, ...], ...] | None:
    raw = meta.get("fake_tool_plan")
    if raw is None:
        return None
    if raw.strip().lower() == "none":
        return ()
    # ``|`` separates steps too: Steward's ``[fake:key=value;…]`` directives split on ``;``
    steps = tuple(
        tuple(name.strip() for name in step.split(",")) for step in raw.replace("|", ";").split(";")
    )
    if any(not name for step in steps for name in step):
        raise ScenarioError(
            f"metadata['fake_tool_plan']: {raw!r} has an empty step or name "
            "(steps are separated by ';' or '|', parallel calls by ',')"
        )
    return steps


def parse_scenario(metadata: dict | None, *, background: bool) -> Scenario:
    """Read the ``fake_*`` keys; unknown keys are the client's own metadata and are ignored."""
    meta = metadata or {}
    duration = _number(meta, "fake_duration", float, 0.0)
    duration = DEFAULT_DURATION if duration is None else duration
    queued_for = _number(meta, "fake_queued_for", float, 0.0)
    if queued_for is None:
        queued_for = duration * 0.2 if background else 0.0
    queued_for = min(queued_for, duration)

    outcome, code, reason = "completed", None, None
    raw_outcome = meta.get("fake_outcome")
    if raw_outcome is not None:
        kind, _, detail = str(raw_outcome).partition(":")
        if kind == "completed" and not detail:
            outcome = "completed"
        elif kind == "failed":
            code = detail or "server_error"
            if code not in ERROR_CODES:
                raise ScenarioError(f"fake_outcome: unknown error code {code!r}")
            outcome = "failed"
        elif kind == "incomplete":
            reason = detail or "max_output_tokens"
            if reason not in INCOMPLETE_REASONS:
                raise ScenarioError(f"fake_outcome: unknown incomplete reason {reason!r}")
            outcome = "incomplete"
        else:
            raise ScenarioError(f"fake_outcome: unknown outcome {raw_outcome!r}")

    output_chars = _number(meta, "fake_output_chars", int, 0)
    chunk_chars = _number(meta, "fake_chunk_chars", int, 1)
    drop_after = _number(meta, "fake_stream_drop_after", int, 0)
    return Scenario(
        duration=duration,
        queued_for=queued_for,
        outcome=outcome,
        outcome_explicit=raw_outcome is not None,
        error_code=code,
        incomplete_reason=reason,
        output_chars=output_chars,
        chunk_chars=chunk_chars or DEFAULT_CHUNK_CHARS,
        create_errors=_error_list(meta, "fake_create_errors"),
        retrieve_errors=_error_list(meta, "fake_retrieve_errors"),
        retry_after=_number(meta, "fake_retry_after", float, 0.0),
        stream_drop_after=drop_after,
        cached_tokens=_number(meta, "fake_cached_tokens", int, 0),
        reasoning_tokens=_number(meta, "fake_reasoning_tokens", int, 0),
        tool_plan=_tool_plan(meta),
        reject_continuation=_reject_continuation(meta),
    )


def _reject_continuation(meta: dict) -> str | None:
    raw = meta.get("fake_reject_continuation")
    if raw is not None and raw not in REJECT_CONTINUATION:
        raise ScenarioError(
            f"metadata['fake_reject_continuation'] must be one of {sorted(REJECT_CONTINUATION)}, "
            f"got {raw!r}"
        )
    return raw


# --- the deterministic "model" -------------------------------------------------------------


def input_text(value) -> str:
    """Flatten the ``input`` parameter (string or list of items/parts) into plain text."""
    if isinstance(value, str):
        return value
    parts: list[str] = []
    if isinstance(value, list):
        for item in value:
            if isinstance(item, str):
                parts.append(item)
            elif isinstance(item, dict):
                content = item.get("content", item.get("text", item.get("output")))
                if isinstance(content, str):
                    parts.append(content)
                elif isinstance(content, list):
                    parts.extend(p["text"] for p in content if isinstance(p, dict) and "text" in p)
    return "\n".join(parts)


_WORD = re.compile(r"\w+")


def output_text(source: str, chars: int | None = None) -> str:
    """A summary-ish transform of ``source`` carrying its hash, padded/cut to ``chars``.

    Default size: a third of the input, between 120 and 1200 characters.
    """
    digest = hashlib.sha256(source.encode()).hexdigest()[:12]
    words = _WORD.findall(source)
    target = chars if chars is not None else max(120, min(1200, len(source) // 3))
    if target == 0:
        return ""
    if chars is None and (answer := plausible_answer(source)) is not None:
        return answer
    head = " ".join(words[::3][:40]) or "(empty input)"
    text = f"Summary [{digest}] of {len(words)} words: {head}."
    point = 1
    while len(text) < target:
        picked = words[point % len(words) :: 5][:12] if words else ["nothing"]
        text += f" Point {point}: {' '.join(picked)} ({digest})."
        point += 1
    return text[:target]


def tokens_for(text: str) -> int:
    """Roughly four characters per token, as OpenAI's rule of thumb says."""
    return max(1, math.ceil(len(text) / 4)) if text else 0


def is_reasoning_model(model: str) -> bool:
    return bool(re.match(r"^(o\d|gpt-5)", model))
