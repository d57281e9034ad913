"""Template helpers of the review console. Model output goes through the product's one
sanitising filter, ``render_output`` from ``jobs.templatetags.steward_output``."""

from django import template

from jobs.templatetags.steward_output import render_output

register = template.Library()
register.filter("render_output", render_output, is_safe=True)


@register.filter
def duration(value):
    """A timedelta as a reviewer reads it: ``45s``, ``12m``, ``3h 05m``, ``2d 4h``."""
    if value is None:
        return "—"
    seconds = max(int(value.total_seconds()), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m"
    return f"{seconds}s"
