"""Small display helpers for the submitter pages (labels come from ``jobs.explain``)."""

import json

from django import template

from ..errors import UnknownJobType
from ..explain import actor_name as _actor_name
from ..explain import event_label as _event_label
from ..job_types import get_job_type

register = template.Library()


@register.filter
def event_label(kind):
    return _event_label(kind)


@register.filter
def actor_name(label):
    return _actor_name(label)


@register.filter
def duration(value):
    """A ``timedelta`` as "1 min 4 s" / "3.2 s"; "—" when unknown."""
    if value is None:
        return "—"
    seconds = value.total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


@register.filter
def usd(value):
    """Costs are fractions of a cent: show enough digits to mean something."""
    if value is None:
        return "—"
    if value == 0:
        return "$0.00"
    if value < 0.01:
        return f"${value:.5f}"
    return f"${value:.2f}"


@register.filter
def job_type_title(name):
    try:
        return get_job_type(name).title
    except UnknownJobType:
        return name


@register.filter
def pretty_json(value):
    """A JSON value indented for reading (tool arguments on the job page)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


@register.filter
def pretty_json_text(text):
    """JSON text indented for reading; other text as it is."""
    try:
        return pretty_json(json.loads(text))
    except (TypeError, ValueError):
        return text
