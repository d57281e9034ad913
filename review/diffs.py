"""A side-by-side diff of two draft versions, as plain data the template escapes.

Lines are matched first; a changed line pair is then compared word by word so the reviewer
sees exactly what moved. Nothing here produces HTML, so model text can't inject markup.
"""

import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from itertools import zip_longest

TOKEN = re.compile(r"\s+|\w+|[^\w\s]")


@dataclass(frozen=True)
class Segment:
    text: str
    changed: bool = False


@dataclass
class Row:
    tag: str  # equal | replace | delete | insert
    left_no: int | None = None
    right_no: int | None = None
    left: list[Segment] = field(default_factory=list)
    right: list[Segment] = field(default_factory=list)


def _words(old, new):
    a, b = TOKEN.findall(old), TOKEN.findall(new)
    left, right = [], []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if i2 > i1:
            left.append(Segment("".join(a[i1:i2]), tag != "equal"))
        if j2 > j1:
            right.append(Segment("".join(b[j1:j2]), tag != "equal"))
    return _merged(left), _merged(right)


def _merged(segments):
    """Join changes separated only by spaces, so "We will send" reads as one change."""
    out = []
    for i, seg in enumerate(segments):
        between_changes = (
            not seg.changed
            and not seg.text.strip()
            and 0 < i < len(segments) - 1
            and segments[i + 1].changed
            and out
            and out[-1].changed
        )
        if (seg.changed or between_changes) and out and out[-1].changed:
            out[-1] = Segment(out[-1].text + seg.text, True)
        else:
            out.append(seg)
    return out


def side_by_side(old, new):
    """Rows pairing the lines of ``old`` and ``new`` with word-level change marks."""
    a, b = (old or "").splitlines(), (new or "").splitlines()
    rows = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            for k in range(i2 - i1):
                line = [Segment(a[i1 + k])]
                rows.append(Row("equal", i1 + k + 1, j1 + k + 1, line, line))
            continue
        pairs = zip_longest(range(i1, i2), range(j1, j2))
        for i, j in pairs:
            if i is not None and j is not None:
                left, right = _words(a[i], b[j])
                rows.append(Row("replace", i + 1, j + 1, left, right))
            elif i is not None:
                rows.append(Row("delete", i + 1, None, [Segment(a[i], True)], []))
            else:
                rows.append(Row("insert", None, j + 1, [], [Segment(b[j], True)]))
    return rows


def change_counts(rows):
    """``(lines added, lines removed)`` in a diff, counting a changed line as both."""
    added = sum(r.tag in ("insert", "replace") for r in rows)
    removed = sum(r.tag in ("delete", "replace") for r in rows)
    return added, removed
