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
