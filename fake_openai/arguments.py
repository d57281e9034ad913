"""Function-call arguments the fake "model" derives from the prompt and the tool's JSON Schema.

A test states what the model should pass by writing it into the input (``Order reference:
A-1042``); everything else gets a deterministic value from the schema, so the same prompt always
produces the same call. Only what a tool schema usually holds is understood (``type``, ``enum``,
``format``, ``properties``, ``required``, ``items``, ``anyOf``/``oneOf``, nullable type lists);
keywords such as ``pattern`` or ``minLength`` are not honoured.
"""

from __future__ import annotations

import json
import re
from typing import Any

# The value of ``name: value`` runs to the end of the line, a ';', or a comma that starts the
# next ``key: value`` phrase.
_VALUE = r"\s*[:=]\s*(?P<value>[^\n;]*?)\s*(?=$|;|,\s*[\w ]{1,40}?\s*[:=])"
_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}
_FORMATS = {
    "date": "2024-01-01",
    "date-time": "2024-01-01T00:00:00Z",
    "time": "00:00:00",
}


def arguments_for(tool: dict, text: str, digest: str) -> dict[str, Any]:
    """Arguments for ``tool`` (a ``function`` tool): every top-level property gets a value,
    read from ``text`` when it says ``<property>: <value>``, else from the schema; ``digest``
    (hex of the prompt's hash) makes the made-up strings differ per prompt."""
    schema = tool.get("parameters") or {}
    properties = schema.get("properties") or {}
    return {
        name: _value(name, sub, text, digest, tool.get("strict") is True)
        for name, sub in properties.items()
    }


def stated_value(name: str, text: str) -> str | None:
    """What ``text`` says for ``name`` (case-insensitive; ``_`` and spaces are equivalent)."""
    words = [re.escape(w) for w in re.split(r"[\s_]+", name.strip()) if w]
    if not words:
        return None
    pattern = r"(?<![\w])" + r"[\s_]+".join(words) + _VALUE
    match = re.search(pattern, text, re.IGNORECASE | re.MULTILINE)
    if match is None:
        return None
    value = match["value"].strip().strip("\"'").rstrip(".,").strip()
    return value or None


def _branch(schema: dict) -> tuple[dict, str | None]:
    """The schema to fill and its one JSON type (first non-null of a list or of anyOf/oneOf)."""
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if options:
            usable = [o for o in options if o.get("type") != "null"] or options
            return _branch(usable[0])
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind is None and "enum" in schema:
        kind = "string"
    if kind is None and "properties" in schema:
        kind = "object"
    return schema, kind


def _value(name: str, schema: dict, text: str, digest: str, strict: bool) -> Any:
    schema, kind = _branch(schema)
    if kind == "object":
        required = (
            set(schema.get("properties") or {}) if strict else set(schema.get("required", []))
        )
        return {
            sub: _value(sub, sub_schema, text, digest, strict)
            for sub, sub_schema in (schema.get("properties") or {}).items()
            if sub in required
        }
    stated = stated_value(name, text)
    if stated is not None:
        converted = _convert(stated, schema, kind)
        if converted is not None:
            return converted
    return _default(name, schema, kind, digest)


def _convert(raw: str, schema: dict, kind: str | None) -> Any:
    """``raw`` as the schema's type, or None when it does not fit (the default is used)."""
    enum = schema.get("enum")
    if enum:
        return next((e for e in enum if str(e).lower() == raw.lower()), None)
    if kind == "integer":
        try:
            return int(raw.replace(",", "").replace("_", ""))
        except ValueError:
            return None
    if kind == "number":
        try:
            number = float(raw.replace(",", ""))
        except ValueError:
            return None
        return int(number) if number.is_integer() else number
    if kind == "boolean":
        lowered = raw.lower()
        return True if lowered in _TRUE else False if lowered in _FALSE else None
    if kind == "array":
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            return parsed
        _, item_kind = _branch(schema.get("items") or {"type": "string"})
        item = _convert(raw, schema.get("items") or {}, item_kind)
        return [item] if item is not None else None
    return raw


def _default(name: str, schema: dict, kind: str | None, digest: str) -> Any:
    enum = schema.get("enum")
    if enum:
        return enum[0]
    if kind in ("integer", "number"):
        return 1
    if kind == "boolean":
        return False
    if kind == "array":
        return []
    fmt = schema.get("format")
    if fmt == "email":
        return f"customer-{digest[:6]}@example.com"
    if fmt in ("uri", "url"):
        return f"https://example.com/{name}/{digest[:6]}"
    if fmt in _FORMATS:
        return _FORMATS[fmt]
    return f"{name}-{digest[:6]}"
