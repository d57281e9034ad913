from datetime import timedelta

import pytest

from jobs.errors import LaneNotAllowed, UnknownJobType
from jobs.job_types import AuthorityClass, InputField, JobType, Lane, all_job_types, get_job_type


def _declare(**overrides):
    fields = dict(
        name="zdr_summary",
        title="ZDR summary",
        description="",
        instructions="{text}",
        fields=(InputField("text", "Text"),),
        lane=Lane.BACKGROUND,
        authority_class=AuthorityClass.READ_ONLY,
        zero_data_retention=True,
    )
    return JobType(**{**fields, **overrides})


@pytest.mark.parametrize("lane", [Lane.BACKGROUND, Lane.STREAM, Lane.BATCH])
def test_zero_data_retention_job_type_refuses_retaining_lanes(lane):
    with pytest.raises(LaneNotAllowed, match="zero data retention"):
        _declare(lane=lane)


def test_zero_data_retention_job_type_may_use_sync_lane():
    assert _declare(lane=Lane.SYNC).lane == Lane.SYNC


def test_four_demo_types_cover_every_authority_class():
    classes = {jt.authority_class for jt in all_job_types()}
    assert classes == set(AuthorityClass.values)
    assert get_job_type("issue_refund").action is not None
    assert get_job_type("summarize_document").deadline == timedelta(minutes=30)


def test_unknown_job_type_is_a_domain_error():
    with pytest.raises(UnknownJobType, match="no job type"):
        get_job_type("launch_rockets")


def test_reviewer_notes_are_added_to_instructions():
    spec = get_job_type("draft_support_reply")
    text = spec.render_instructions(
        {"tone": "formal", "customer_name": "Ada", "message": "Hi"},
        reviewer_notes=["Mention the refund policy."],
    )
    assert "Ada" in text and "Mention the refund policy." in text


def test_input_json_schema_lists_required_fields():
    schema = get_job_type("issue_refund").input_json_schema()
    assert set(schema["required"]) == {"order_reference", "customer_email", "amount", "reason"}
    assert schema["additionalProperties"] is False
