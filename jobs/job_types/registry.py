"""Declaring job types and validating their input."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from functools import cache

from django.db import models
from jsonschema import Draft202012Validator

from config.text import text_problem

from ..errors import LaneNotAllowed, UnknownJobType


class Lane(models.TextChoices):
    BACKGROUND = "background", "Background"
    STREAM = "stream", "Stream"
    SYNC = "sync", "Sync"
    BATCH = "batch", "Batch"


class AuthorityClass(models.TextChoices):
    READ_ONLY = "read_only", "Read only"
    DRAFT = "draft", "Draft"
    LOW_RISK_WRITE = "low_risk_write", "Low-risk write"
    EXTERNAL_EFFECT = "external_effect", "External effect"


# Lanes that leave response data at the provider for a while (background mode keeps it ~10 min).
RETAINING_LANES = frozenset({Lane.BACKGROUND, Lane.STREAM, Lane.BATCH})


# A decimal as people and the API write it (12, 12.5, -3.25): the forms and the published
# schema accept the same text.
DECIMAL_TEXT = re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,15})?")


@dataclass(frozen=True)
class InputField:
    """One input field. ``kind``: text, textarea, choice, decimal, email or boolean."""

    name: str
    label: str
    kind: str = "text"
    required: bool = True
    max_length: int | None = None
    choices: tuple[str, ...] = ()
    help_text: str = ""
    min_value: Decimal | None = None
    max_value: Decimal | None = None

    def clean(self, raw):
        """Return ``(value, error)``: the value in its stored form, or a message for the user."""
        if self.kind == "boolean":
            if raw in (None, ""):
                return False, None
            if isinstance(raw, bool):
                return raw, None
            if str(raw).lower() in ("true", "on", "1", "yes"):
                return True, None
            if str(raw).lower() in ("false", "off", "0", "no"):
                return False, None
            return None, "Choose yes or no."
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if self.required:
                return None, "This field is required."
            return "", None
        if self.kind == "decimal":
            if not DECIMAL_TEXT.fullmatch(str(raw).strip()):
                return None, "Enter a number, like 12.50."
            try:
                value = Decimal(str(raw).strip())
            except (InvalidOperation, ValueError):
                return None, "Enter a number, like 12.50."
            if not value.is_finite():
                return None, "Enter a number, like 12.50."
            if self.min_value is not None and value < self.min_value:
                return None, f"Must be at least {self.min_value}."
            if self.max_value is not None and value > self.max_value:
                return None, f"Must be at most {self.max_value}."
            return str(value.quantize(Decimal("0.01"))), None
        if not isinstance(raw, str | int | float) or isinstance(raw, bool):
            return None, "Enter text."
        value = str(raw).strip()
        problem = text_problem(value)
        if problem:
            return None, problem
        if self.max_length and len(value) > self.max_length:
            return None, f"Keep this under {self.max_length} characters (it has {len(value)})."
        if self.kind == "choice" and value not in self.choices:
            return None, f"Choose one of: {', '.join(self.choices)}."
        if self.kind == "email" and ("@" not in value or "." not in value.rsplit("@", 1)[-1]):
            return None, "Enter an email address."
        return value, None

    def json_schema(self):
        schema = {"title": self.label}
        if self.help_text:
            schema["description"] = self.help_text
        if self.kind == "boolean":
            schema["type"] = "boolean"
        elif self.kind == "decimal":
            schema.update(type="string", format="decimal", pattern=f"^{DECIMAL_TEXT.pattern}$")
        else:
            schema["type"] = "string"
            if self.required:
                schema["minLength"] = 1
            if self.max_length:
                schema["maxLength"] = self.max_length
            if self.kind == "choice":
                schema["enum"] = list(self.choices)
            if self.kind == "email":
                schema["format"] = "email"
        return schema


@dataclass(frozen=True)
class JobType:
    name: str
    title: str
    description: str
    fields: tuple[InputField, ...]
    instructions: str
    lane: Lane
    authority_class: AuthorityClass
    model: str = "gpt-5-mini"
    deadline: timedelta = timedelta(hours=1)
    attempt_limit: int = 3
    # Review policy. ``review_sample_rate`` applies to low_risk_write; ``approver_role`` to
    # external_effect; ``review_sla`` is how long a draft may wait before it is flagged.
    review_sample_rate: float = 0.2
    approver_role: str = "admin"
    review_sla: timedelta = timedelta(hours=4)
    # Whether the submitter may read a draft while a reviewer checks it (marked as not yet
    # approved). Off: they see that a reviewer is checking it, and the text once approved.
    submitter_sees_draft_in_review: bool = False
    zero_data_retention: bool = False
    summary_field: str = ""
    sensitive_field: str = ""
    action: Callable | None = field(default=None, compare=False)
    # External effects: what approving does, in one sentence from the job's input, for the
    # approver's confirmation ("Refund $49.99 to … for order …").
    effect_summary: Callable | None = field(default=None, compare=False)
    # Tool runs: the tools the model may call (``jobs.job_types.tools.Tool``) and the limits of
    # one attempt's run. A job type with tools runs on the background lane.
    # (not compared: a job type is hashed, as the key of its cached input validator, and tool
    # schemas are dicts)
    tools: tuple = field(default=(), compare=False)
    limits: object = field(default=None, compare=False)
    # Tools the provider runs itself, as the Responses API names them, e.g.
    # ``({"type": "web_search"},)``: their findings and the answer's citations are kept as
    # evidence.
    hosted_tools: tuple = field(default=(), compare=False)

    def tool(self, name):
        """The declared tool called ``name``, or None."""
        return next((tool for tool in self.tools if tool.name == name), None)

    def provider_tools(self):
        """The ``tools`` a create sends: the function tools, then the hosted ones."""
        return [tool.for_provider() for tool in self.tools] + [dict(t) for t in self.hosted_tools]

    def describe_effect(self, job_input):
        if self.effect_summary is None:
            return f"{self.title}: its action runs once."
        return self.effect_summary(job_input)

    def __post_init__(self):
        if self.zero_data_retention and self.lane in RETAINING_LANES:
            raise LaneNotAllowed(
                f"Job type {self.name!r} needs zero data retention, so it cannot use the "
                f"{self.lane} lane (the provider keeps background responses for about ten "
                "minutes). Use the sync lane."
            )
        if self.authority_class == AuthorityClass.EXTERNAL_EFFECT and self.action is None:
            raise ValueError(f"External-effect job type {self.name!r} needs an action.")
        if not 0 <= self.review_sample_rate <= 1:
            raise ValueError("review_sample_rate must be between 0 and 1.")
        if self.tools:
            if self.lane != Lane.BACKGROUND:
                raise ValueError(f"Job type {self.name!r} has tools, so it runs in background.")
            names = [tool.name for tool in self.tools]
            if len(set(names)) != len(names):
                raise ValueError(f"Job type {self.name!r} declares a tool name twice.")
            if self.limits is None:
                from .tools import RunLimits

                object.__setattr__(self, "limits", RunLimits())

    def clean_input(self, data):
        """Validate raw input; return ``(cleaned, errors)`` where errors maps field → [message]."""
        if not isinstance(data, dict):
            return {}, {"input": ["Send the input as an object of fields."]}
        cleaned, errors = {}, {}
        for spec in self.fields:
            value, error = spec.clean(data.get(spec.name))
            if error:
                errors[spec.name] = [error]
            else:
                cleaned[spec.name] = value
        unknown = sorted(set(data) - {f.name for f in self.fields})
        if unknown:
            errors["input"] = [f"Unknown field(s): {', '.join(unknown)}."]
        return cleaned, errors

    def schema_errors(self, data):
        """Where ``data`` breaks ``input_json_schema()``, as ``{field: [message]}``: the API checks
        the schema it publishes (a number where it says string is refused, not stored as text)
        before ``clean_input`` applies the field rules both the API and the forms share."""
        errors = {}
        for error in _validator(self).iter_errors(data):
            for name, message in _schema_messages(error, data):
                errors.setdefault(name, []).append(message)
        return errors

    def summarize(self, cleaned):
        """A short, support-safe line describing the input (never the whole input)."""
        text = str(cleaned.get(self.summary_field) or self.title)
        text = " ".join(text.split())
        return text if len(text) <= 120 else text[:117] + "…"

    def is_sensitive(self, cleaned):
        return bool(self.sensitive_field and cleaned.get(self.sensitive_field))

    def render_instructions(self, cleaned, reviewer_notes=()):
        text = self.instructions.format(**cleaned)
        for note in reviewer_notes:
            text += f"\n\nA reviewer sent the previous draft back with this note: {note}"
        return text

    def input_json_schema(self):
        return {
            "type": "object",
            "title": self.title,
            "properties": {f.name: f.json_schema() for f in self.fields},
            "required": [f.name for f in self.fields if f.required and f.kind != "boolean"],
            "additionalProperties": False,
        }


JSON_TYPE_NAMES = {
    "string": "text (a JSON string)",
    "boolean": "true or false",
    "object": "an object of fields",
}


def _json_type(value):
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    return {dict: "object", list: "array", str: "string"}.get(type(value), "value")


@cache
def _validator(job_type):
    """One compiled validator per job type (job types are frozen, so hashable)."""
    return Draft202012Validator(job_type.input_json_schema())


def _schema_messages(error, data):
    """One schema error → ``(field, message)`` pairs in the words the forms use."""
    field = str(error.path[0]) if error.path else "input"
    kind, expected = error.validator, error.validator_value
    if kind == "required":
        return [(name, "This field is required.") for name in expected if name not in data]
    if kind == "additionalProperties":
        unknown = sorted(set(data) - set(error.schema.get("properties", {})))
        return [("input", f"Unknown field(s): {', '.join(unknown)}.")]
    if kind == "type":
        wanted = JSON_TYPE_NAMES.get(expected, expected)
        return [(field, f"Send {wanted}, not {_json_type(error.instance)}.")]
    if kind == "minLength":
        return [(field, "This field is required.")]
    if kind == "maxLength":
        count = len(error.instance)
        return [(field, f"Keep this under {expected} characters (it has {count}).")]
    if kind == "enum":
        return [(field, f"Choose one of: {', '.join(map(str, expected))}.")]
    if kind == "pattern":
        return [(field, 'Enter a number as text, like "12.50".')]
    return [(field, "This value does not fit the job type's input schema.")]


_REGISTRY: dict[str, JobType] = {}


def register(job_type: JobType) -> JobType:
    _REGISTRY[job_type.name] = job_type
    return job_type


def get_job_type(name) -> JobType:
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise UnknownJobType(f"There is no job type called {name!r}.") from None


def all_job_types() -> list[JobType]:
    return sorted(_REGISTRY.values(), key=lambda jt: jt.title)
