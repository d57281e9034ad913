"""The one way model output reaches a page: markdown → HTML → nh3 allow-list.

Model output is untrusted. Raw HTML in it is never passed through: Python-Markdown's HTML
handling is switched off, so ``<script>`` arrives as visible text, and nh3 then removes
anything outside a small allow-list (no event handlers, no ``javascript:`` links) as a
second line of defence.
"""

import markdown
import nh3
from django import template
from django.utils.safestring import mark_safe

register = template.Library()

ALLOWED_TAGS = {
    "p", "br", "hr", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "a", "table", "thead", "tbody", "tr", "th", "td",
    "del", "sup", "sub",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}


def _markdown():
    md = markdown.Markdown(extensions=["fenced_code", "tables", "sane_lists"])
    md.preprocessors.deregister("html_block")  # raw HTML blocks become plain text …
    md.inlinePatterns.deregister("html")  # … and so do inline tags
    return md


def render_markdown(text):
    html = _markdown().convert(text or "")
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


@register.filter(is_safe=True)
def render_output(text):
    """``{{ artifact.text|render_output }}``: untrusted markdown rendered safely."""
    return mark_safe(render_markdown(text))  # noqa: S308 — sanitised by nh3 just above


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
