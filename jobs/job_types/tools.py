"""Tools a job type lets the model call during a run, declared once with their authority.

A tool is plain Python, ``handler(arguments, job, *, call_id) -> JSON value`` (``call_id`` is
the key a write can make itself idempotent with), with a strict JSON Schema for its arguments.
What happens to a call depends on the tool's authority class (DESIGN.md, runs with tools):
``read_only`` calls run at once; ``low_risk_write`` calls run once their arguments pass the
schema; ``external_effect`` calls wait for a person with the tool's approver role, who approves
them (as they are or with edited arguments) or rejects them with a reason the model reads.
``draft`` tools are not supported yet. Each call runs at most once (``jobs.execution.tools``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property

from jsonschema import Draft202012Validator

from .registry import AuthorityClass


class ToolError(Exception):
    """A handler's way to say the call failed, in words the model (and the reviewer) reads."""


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict = field(compare=False)  # not compared: a dict cannot be hashed
    authority_class: AuthorityClass
    handler: Callable = field(compare=False)
    # who may approve an external-effect call (a workspace role)
    approver_role: str = "admin"
    timeout: timedelta = timedelta(seconds=30)
    # ``True``: a failure is tried again (up to ``tries``); ``False``: its error goes back to
    # the model as the call's output, so it can adapt
    retry_errors: bool = False
    tries: int = 3
    # what the job page says while the call runs, from its arguments ("Looking up order
    # A-1042"); the description's first sentence when not given
    describe: Callable | None = field(default=None, compare=False)

    def __post_init__(self):
        if not self.name.replace("_", "").isalnum() or len(self.name) > 64:
            raise ValueError(f"Tool name {self.name!r}: letters, digits and underscores only.")
        if self.authority_class == AuthorityClass.DRAFT:
            raise ValueError(
                f"Tool {self.name!r}: draft tools (output held for review with the answer) "
                "are not supported yet; declare it read_only, low_risk_write or external_effect."
            )
        _check_strict(self.name, self.parameters)
        Draft202012Validator.check_schema(self.parameters)

    @cached_property
    def _validator(self):
        return Draft202012Validator(self.parameters)

    def argument_errors(self, arguments):
        """Where ``arguments`` break the schema, as plain sentences (empty when they fit)."""
        return [
            f"{'/'.join(map(str, error.path)) or 'arguments'}: {error.message}"
            for error in self._validator.iter_errors(arguments)
        ]

    def for_provider(self):
        """The Responses API's ``FunctionTool``."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
            "strict": True,
        }

    def sentence(self, arguments):
        if self.describe is not None:
            try:
                return str(self.describe(arguments))
            except (KeyError, TypeError, ValueError):
                pass
        return self.description.split(". ")[0].rstrip(".")


def _check_strict(name, schema, where="parameters"):
    """OpenAI's strict mode: every object lists all its properties as required and allows no
    others. Checked when the tool is declared, not when the provider refuses it."""
    if schema.get("type") == "object":
        properties = schema.get("properties", {})
        if schema.get("additionalProperties") is not False:
            raise ValueError(f"Tool {name!r}: {where} must set additionalProperties to false.")
        if sorted(schema.get("required", [])) != sorted(properties):
            raise ValueError(f"Tool {name!r}: {where} must list every property as required.")
        for key, sub in properties.items():
            _check_strict(name, sub, f"{where}.{key}")
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        _check_strict(name, schema["items"], f"{where}[]")


@dataclass(frozen=True)
class RunLimits:
    """What one attempt of a tool run may use; crossing a limit stops it with a clear failure."""

    turns: int = 8  # provider responses in one attempt
    tool_calls: int = 20
    cost_usd: str | None = None  # e.g. "0.50": the job's cost, every attempt and step included
    # how long a call may wait for approval; then it is recorded as timed out (never as a
    # rejection) and the run stops with that reason
    approval_timeout: timedelta = timedelta(hours=24)
