"""Model output is untrusted: markdown renders, raw HTML and script vectors stay inert."""

from html.parser import HTMLParser

import pytest

from review.diffs import change_counts, side_by_side
from review.templatetags.review_output import render_output


def live_tags(html):
    """The elements a browser would build from ``html`` (escaped text builds none)."""
    found = []

    class Parser(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, dict(attrs)))

    Parser().feed(html)
    return found


def test_markdown_renders():
    html = render_output("# Title\n\n- **one**\n- two\n\n[docs](https://example.test)")
    assert "<h1>Title</h1>" in html and "<strong>one</strong>" in html
    assert '<a href="https://example.test" rel="noopener noreferrer nofollow">docs</a>' in html


@pytest.mark.parametrize(
    "attack",
    [
        "<script>window.__pwned=1</script>",
        '<img src=x onerror="window.__pwned=2">',
        '<a href="javascript:alert(1)">x</a>',
        "[click](javascript:alert(1))",
        '<svg onload="alert(1)"></svg>',
        '<iframe src="https://evil.test"></iframe>',
        '<div style="background:url(javascript:alert(1))">x</div>',
    ],
)
def test_raw_html_and_script_vectors_are_inert(attack):
    tags = live_tags(render_output(f"Before\n\n{attack}\n\nAfter"))
    assert {name for name, _ in tags} <= {"p", "a"}
    for _, attrs in tags:
        assert not any(name.startswith("on") or name == "style" for name in attrs)
        assert not (attrs.get("href") or "").lower().startswith("javascript")


def test_raw_html_is_shown_as_text():
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in render_output(
        "<script>window.__pwned=1</script>"
    )


def test_diff_marks_changed_words_and_counts_lines():
    rows = side_by_side("a\nkeep\nold line\n", "a\nkeep\nnew line\nadded\n")
    assert [r.tag for r in rows] == ["equal", "equal", "replace", "insert"]
    assert [s.text for s in rows[2].right if s.changed] == ["new"]
    assert change_counts(rows) == (2, 1)


def test_diff_carries_markup_as_plain_text():
    rows = side_by_side("hi", "<b>hi</b>")
    assert "".join(s.text for s in rows[0].right) == "<b>hi</b>"
