"""The fake answers the demo's job types as a model would, from what the prompt says, so a
person trying the demo can judge a draft."""

import pytest

from fake_openai.scenarios import output_text
from jobs.job_types import get_job_type
from tests.review.drafts import INPUTS

EXPECTED = {
    "draft_support_reply": ["Hi Dana,", "“My order arrived broken”", "Best,\nSupport"],
    "tag_ticket": ["Suggested tags: ", "login", "tuesday"],
    "summarize_document": ["## Board minutes"],
    "issue_refund": ["refund of $25.00 for order A-1001", "Reason recorded: Arrived broken."],
}


@pytest.mark.parametrize("job_type", sorted(EXPECTED))
def test_each_demo_job_type_gets_an_answer_in_its_own_words(job_type):
    prompt = get_job_type(job_type).render_instructions(INPUTS[job_type])
    answer = output_text(prompt)
    for part in EXPECTED[job_type]:
        assert part in answer
    assert "Summary [" not in answer and output_text(prompt) == answer  # deterministic


def test_a_prompt_the_fake_does_not_know_gets_the_generic_text():
    assert output_text("Translate this into French: good morning").startswith("Summary [")


TOOL_RUNS = {
    "resolve_ticket": (
        {
            "order_reference": "A-1042",
            "customer_email": "dana@example.test",
            "message": "My shoes arrived wet. Can you help?",
        },
        ["order A-1042", "dana@example.test", "“My shoes arrived wet”"],
    ),
    "answer_order_question": (
        {"order_reference": "A-1043", "question": "Where is my parcel?"},
        ["You asked: “Where is my parcel?”", "order A-1043", "carrier"],
    ),
    "research_question": (
        {"question": "How do background responses expire?"},
        ["On “How do background responses expire”", "cited at the end"],
    ),
}


@pytest.mark.parametrize("job_type", sorted(TOOL_RUNS))
def test_the_answer_of_each_demo_tool_run_says_what_the_run_did(job_type):
    job_input, parts = TOOL_RUNS[job_type]
    answer = output_text(get_job_type(job_type).render_instructions(job_input))
    for part in parts:
        assert part in answer
    assert "Summary [" not in answer


def test_the_web_search_looks_for_the_persons_question_not_the_instructions():
    from fake_openai.tools import search_query

    prompt = get_job_type("research_question").render_instructions(
        {"question": "How do background responses expire?"}
    )
    assert search_query(prompt) == "How do background responses expire"
