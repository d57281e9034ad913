"""Charts drawn on the server as inline SVG from a panel's own numbers: no script, no CDN,
readable without JavaScript, and the table next to each chart holds the same values.

Labels are escaped here; the result is marked safe only after that."""

from django.utils.html import escape
from django.utils.safestring import mark_safe

BAR_HEIGHT = 18
GAP = 6
LABEL_WIDTH = 220
BAR_WIDTH = 360


def _number(value):
    return float(value or 0)


def bars(items, *, title):
    """Horizontal bars, one per ``(label, value)``, scaled to the largest value."""
    if not items:
        return ""
    top = max(_number(v) for _, v in items) or 1.0
    height = len(items) * (BAR_HEIGHT + GAP) + GAP
    width = LABEL_WIDTH + BAR_WIDTH + 90
    parts = [
        f'<svg class="ops-chart" role="img" viewBox="0 0 {width} {height}" '
        f'width="100%" aria-label="{escape(title)}">'
    ]
    for i, (label, value) in enumerate(items):
        y = GAP + i * (BAR_HEIGHT + GAP)
        length = BAR_WIDTH * _number(value) / top
        parts.append(
            f'<text x="{LABEL_WIDTH - 6}" y="{y + BAR_HEIGHT - 5}" text-anchor="end">'
            f"{escape(label)}</text>"
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{length:.1f}" height="{BAR_HEIGHT}">'
            f"<title>{escape(label)}: {escape(value)}</title></rect>"
            f'<text x="{LABEL_WIDTH + length + 4:.1f}" y="{y + BAR_HEIGHT - 5}">'
            f"{escape(value)}</text>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 — every label and value is escaped above


def columns(items, *, title):
    """Vertical columns over time, one per ``(label, value)``; the first and last labels show."""
    if not items:
        return ""
    top = max(_number(v) for _, v in items) or 1.0
    chart_height, width = 140, 640
    step = width / len(items)
    parts = [
        f'<svg class="ops-chart" role="img" viewBox="0 0 {width} {chart_height + 36}" '
        f'width="100%" aria-label="{escape(title)}">'
    ]
    for i, (label, value) in enumerate(items):
        height = chart_height * _number(value) / top
        parts.append(
            f'<rect x="{i * step + 1:.1f}" y="{chart_height - height:.1f}" '
            f'width="{max(step - 2, 1):.1f}" height="{height:.1f}">'
            f"<title>{escape(label)}: {escape(value)}</title></rect>"
        )
    parts.append(
        f'<text x="0" y="{chart_height + 16}">{escape(items[0][0])}</text>'
        f'<text x="{width}" y="{chart_height + 16}" text-anchor="end">'
        f"{escape(items[-1][0])}</text>"
        f'<text x="0" y="{chart_height + 32}">max {escape(max(v for _, v in items))}</text>'
    )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 — every label and value is escaped above


def chart_for(panel):
    draw = columns if panel.chart_kind == "columns" else bars
    return draw(panel.chart, title=panel.title)
