"""Text that Steward can store: the one check every path that stores user or provider text uses.

Two kinds of text pass JSON and Python but not the database: the NUL character (PostgreSQL's
text and jsonb types refuse it) and lone UTF-16 surrogates such as ``"\\ud800"`` (valid in a
JSON string escape and a Python ``str``, but not encodable as UTF-8, so neither PostgreSQL nor
SQLite can take them). Input from people is refused with a message that names the problem;
text from the provider, which nobody can resend, is normalised with ``storable``.
"""

import re

NUL = "\x00"
REPLACEMENT = "\ufffd"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def text_problem(value):
    """Why ``value`` cannot be stored, in words for the person who sent it; ``None`` if it can."""
    if NUL in value:
        return "Remove the NUL character (\\u0000): it cannot be stored."
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "Contains invalid Unicode (a lone surrogate such as \\ud800); send UTF-8 text."
    return None


def storable(value):
    """``value`` with NUL characters and lone surrogates replaced by U+FFFD."""
    return _UNSTORABLE.sub(REPLACEMENT, value)


def storable_json(value):
    """``value`` (parsed JSON) with ``storable`` applied to every key and string in it."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return {storable(str(k)): storable_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable_json(item) for item in value]
    return value
