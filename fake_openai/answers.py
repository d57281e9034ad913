"""Answers that read like a model's for the demo's job types (``demo/job_types.py``), so a
person trying Steward on the fake can judge a draft in review. Each is built from the prompt
alone, deterministically; a prompt the fake does not recognise gets ``None`` and the generic
transform in ``scenarios.output_text``.
"""

from __future__ import annotations

import re
from collections import Counter

_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{3,}")
_COMMON = frozenset(
    re.findall(
        r"\w+",
        "this that with from have your about there their would could should which what when "
        "were been into them they will just also than then some only very more most here where",
    )
)


def plausible_answer(prompt: str) -> str | None:
    for pattern, answer in _KINDS:
        match = pattern.match(prompt)
        if match:
            return answer(match)
    return None


def _sentences(text: str, limit: int) -> list[str]:
    found = [s.strip() for s in _SENTENCE.findall(text) if len(s.strip().split()) >= 3]
    return found[:limit]


def _key_words(text: str, limit: int) -> list[str]:
    words = [w.lower() for w in _WORD.findall(text) if w.lower() not in _COMMON]
    return [word for word, _ in Counter(words).most_common(limit)]


def _summary(match: re.Match) -> str:
    title, document = match["title"], match["rest"]
    points = _sentences(document, 5) or [f"The document “{title}” is short and has no detail."]
    bullets = "\n".join(f"- {point.rstrip('.')}." for point in points)
    topics = ", ".join(_key_words(document, 3)) or "its subject"
    return f"## {title}\n\n{bullets}\n\nIn short: the document is mostly about {topics}."


def _support_reply(match: re.Match) -> str:
    name, tone, message = match["name"], match["tone"], match["rest"].strip()
    first = (_sentences(message, 1) or [message or "your message"])[0].rstrip(".?!")
    friendly = tone.lower() in {"friendly", "warm", "casual"}
    warm = "Thanks so much for" if friendly else "Thank you for"
    return (
        f"Hi {name},\n\n{warm} getting in touch. You wrote: “{first}”. I have looked into it "
        "and passed the details to the team that can fix it; you will hear from us within one "
        "business day, and sooner if we can.\n\nIf anything else comes up, just reply to this "
        "message.\n\nBest,\nSupport"
    )


def _tags(match: re.Match) -> str:
    words = _key_words(match["rest"], 5) or ["general"]
    return "Suggested tags: " + ", ".join(words) + "."


def _refund_note(match: re.Match) -> str:
    reason = match["rest"].strip().rstrip(".") or "no reason given"
    return (
        f"Hello,\n\nWe have issued a refund of ${match['amount']} for order {match['order']}. "
        "It will reach the original payment method within 5–10 business days.\n\n"
        f"Reason recorded: {reason}.\n\nBest regards,\nSupport"
    )


def _ticket_resolved(match: re.Match) -> str:
    first = (_sentences(match["rest"], 1) or ["your message"])[0].rstrip(".?!")
    return (
        f"I looked up order {match['order']}, left an internal note for the team and wrote to "
        f"{match['email']} about their message (“{first}”). What each step returned is below."
    )


def _order_answer(match: re.Match) -> str:
    question = match["rest"].strip().rstrip("?.!") or "your question"
    return (
        f"You asked: “{question}?”. I looked up order {match['order']} and asked the carrier "
        "for its latest scans; what each returned is listed below."
    )


def _research(match: re.Match) -> str:
    question = match["rest"].strip().rstrip("?.!") or "the question"
    topics = ", ".join(_key_words(question, 3)) or "the subject"
    return (
        f"On “{question}”: the sources found agree on the main points about {topics}, and "
        "disagree on the details. Where each point was read is cited at the end."
    )


_KINDS = [
    (
        re.compile(r"Summarize the document titled '(?P<title>[^']*)'.*?\n\n(?P<rest>.*)", re.S),
        _summary,
    ),
    (
        re.compile(
            r"Write an? (?P<tone>\w+) support reply to (?P<name>[^,]+), who wrote:\s*(?P<rest>.*)",
            re.S,
        ),
        _support_reply,
    ),
    (re.compile(r"Suggest up to five short tags for this ticket\.(?P<rest>.*)", re.S), _tags),
    (
        re.compile(
            r"Write a short note to \S+ confirming a refund of \$(?P<amount>[\d.,]+) for order "
            r"(?P<order>\S+)\. Reason given: (?P<rest>.*)",
            re.S,
        ),
        _refund_note,
    ),
    (
        re.compile(
            r"Resolve this support ticket\..*?Order reference: (?P<order>\S+)\s+"
            r"Customer email: (?P<email>\S+)\s+Message: (?P<rest>.*)",
            re.S,
        ),
        _ticket_resolved,
    ),
    (
        re.compile(
            r"Answer this question about an order\..*?Order reference: (?P<order>\S+)\s+"
            r"Question: (?P<rest>.*)",
            re.S,
        ),
        _order_answer,
    ),
    (re.compile(r"Research this question on the web.*?\n\n(?P<rest>.*)", re.S), _research),
]
