"""Charts drawn on the server as inline SVG from a panel's own numbers: no script, no CDN,
readable without JavaScript, and the table next to each chart holds the same values.

Labels are escaped here; the result is marked safe only after that."""

from django.utils.html import escape
from django.utils.safestring import mark_safe

BAR_HEIGHT = 18
LABEL_HEIGHT = 16
GAP = 8
BAR_WIDTH = 480


def _number(value):
    return float(value or 0)


def _with_unit(value, unit):
    return f"{value} {unit}" if unit else str(value)


def bars(items, *, title, unit=""):
    """Horizontal bars, one per ``(label, value)``, scaled to the largest value. Each label
    sits on its own line above its bar, so a long one is never cut; each value carries the
    chart's unit."""
    if not items:
        return ""
    top = max(_number(v) for _, v in items) or 1.0
    row = LABEL_HEIGHT + BAR_HEIGHT + GAP
    height = len(items) * row + GAP
    width = BAR_WIDTH + 160
    parts = [
        f'<svg class="ops-chart" role="img" viewBox="0 0 {width} {height}" '
        f'width="100%" aria-label="{escape(title)}{escape(f" ({unit})" if unit else "")}">'
    ]
    for i, (label, value) in enumerate(items):
        y = GAP + i * row
        bar_y = y + LABEL_HEIGHT
        length = BAR_WIDTH * _number(value) / top
        shown = escape(_with_unit(value, unit))
        parts.append(
            f'<text x="0" y="{y + LABEL_HEIGHT - 4}" class="ops-chart-label">{escape(label)}</text>'
            f'<rect x="0" y="{bar_y}" width="{length:.1f}" height="{BAR_HEIGHT}">'
            f"<title>{escape(label)}: {shown}</title></rect>"
            f'<text x="{length + 4:.1f}" y="{bar_y + BAR_HEIGHT - 5}">{shown}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 — every label and value is escaped above


def columns(items, *, title, unit=""):
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
        f'<text x="0" y="{chart_height + 32}">'
        f"max {escape(_with_unit(max(v for _, v in items), unit))}</text>"
    )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 — every label and value is escaped above


def chart_for(panel):
    draw = columns if panel.chart_kind == "columns" else bars
    return draw(panel.chart, title=panel.title, unit=panel.chart_unit)
