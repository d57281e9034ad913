"""The one way model output reaches a page: markdown rendered, then sanitised by nh3.

Model output is untrusted text. Never mark it ``|safe``; pipe it through ``render_output``.
"""

import markdown
import nh3
from django import template
from django.utils.safestring import mark_safe

register = template.Library()

ALLOWED_TAGS = {
    "p", "br", "hr", "strong", "em", "b", "i", "code", "pre", "blockquote",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "a",
    "table", "thead", "tbody", "tr", "th", "td", "del",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}


def _markdown():
    # nl2br: a single line break is kept, as the writer meant it ("Best,⏎Support" stays on two
    # lines); Markdown would join the lines into one paragraph.
    md = markdown.Markdown(extensions=["fenced_code", "tables", "sane_lists", "nl2br"])
    md.preprocessors.deregister("html_block")  # raw HTML blocks become plain text …
    md.inlinePatterns.deregister("html")  # … and so do inline tags
    return md


def sanitise_markdown(text):
    """Markdown to HTML with raw HTML shown as text, then only harmless tags kept by nh3
    (a second line of defence); links get rel=noopener and http(s)/mailto only."""
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
    """``{{ text|render_output }}``: the only way model output is put on a page."""
    return mark_safe(sanitise_markdown(text))  # nh3 has sanitised it above
