"""Hostile input gets a 4xx the client can act on, never a 500, and nothing half-stored.

Each class here produced an HTML 500 on a production-like instance before request bodies were
read in one bounded place (``config.bodies``): oversized bodies, pathological JSON, text that
cannot be stored, forged cursors and loose types.
"""

import base64
import json

import pytest
from django.test import Client

from jobs.models import Artifact, Job
from tests.api.conftest import post_json, review_url

PROBLEM = "application/problem+json"
SUMMARY = {"job_type": "summarize_document", "input": {"title": "Q3", "document": "Numbers."}}


def submit(client, body):
    raw = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post("/api/v1/jobs", raw, content_type="application/json")


def assert_problem(response, status):
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == status and body["detail"]
    return body


def with_input(**fields):
    return {**SUMMARY, "input": {**SUMMARY["input"], **fields}}


# --- size -----------------------------------------------------------------------------------


def test_a_body_over_the_limit_is_413_on_submit(api, settings):
    body = assert_problem(submit(api, "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)), 413)
    assert f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes" in body["detail"]
    assert not Job.objects.exists()


def test_a_20_mb_review_edit_is_413_and_keeps_the_draft(claimed, draft):
    text = "x" * 20_000_000
    response = post_json(claimed, review_url(draft, "edit"), {"text": text})
    assert_problem(response, 413)
    assert draft.artifacts.filter(kind=Artifact.Kind.TEXT).count() == 1


def test_a_20_mb_edit_in_the_review_console_is_413_not_500(draft, people):
    reviewer = Client()
    reviewer.force_login(people["reviewer"])
    response = reviewer.post(f"/review/{draft.pk}/edit/", {"text": "x" * 20_000_000})
    assert response.status_code == 413
    assert draft.artifacts.filter(kind=Artifact.Kind.TEXT).count() == 1


# --- shape ----------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [33, 100_000])
def test_json_nested_too_deep_is_400(api, depth):
    body = assert_problem(submit(api, "[" * depth + "]" * depth), 400)
    assert "nested more than 32 levels" in body["detail"]


def test_deep_json_inside_an_input_value_is_400(api):
    nested = "[" * 5000 + "]" * 5000
    raw = json.dumps(with_input(title="x"))[:-2] + f', "extra": {nested}}}}}'
    assert_problem(submit(api, raw), 400)


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_numbers_json_cannot_carry_are_400(api, number):
    raw = json.dumps(SUMMARY)[:-1] + f', "priority": {number}}}'
    assert_problem(submit(api, raw), 400)


def test_a_body_that_is_not_utf8_is_400(api):
    assert_problem(submit(api, '{"job_type": "caf\xe9"}'.encode("latin-1")), 400)


# --- text that cannot be stored ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [("title", "Q3\x00report"), ("title", "Q3 \ud800"), ("document", "x\udfffy")],
)
def test_nul_and_lone_surrogates_in_values_are_field_errors(api, field, value):
    body = assert_problem(submit(api, with_input(**{field: value})), 400)
    assert list(body["errors"]) == [f"input.{field}"]
    assert not Job.objects.exists()


def test_a_lone_surrogate_in_a_key_is_refused_without_echoing_it(api):
    raw = json.dumps(SUMMARY)[:-2] + ', "\\ud800": "x"}}'
    body = assert_problem(submit(api, raw), 400)
    assert body["errors"] == {"input.{key}": [body["errors"]["input.{key}"][0]]}
    assert not Job.objects.exists()


def test_nul_in_a_query_parameter_is_400(api):
    assert_problem(api.get("/api/v1/jobs", {"job_type": "a\x00b"}), 400)


def test_nul_in_a_review_note_is_a_field_error(claimed, draft):
    response = post_json(claimed, review_url(draft, "reject"), {"reason": "no\x00"})
    body = assert_problem(response, 400)
    assert "reason" in body["errors"]


# --- cursors --------------------------------------------------------------------------------


def cursor(text):
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "raw",
    [cursor("p=not-a-date"), cursor("p=2026-13-45T99:00:00"), cursor("o=1&p=42"), cursor("o=x")],
)
def test_a_forged_cursor_is_400(api, raw):
    body = assert_problem(api.get("/api/v1/jobs", {"cursor": raw}), 400)
    assert "cursor" in body["errors"]


def test_a_cursor_steward_gave_out_still_pages(api):
    for n in range(3):
        assert submit(api, with_input(title=f"job {n}")).status_code == 201
    first = api.get("/api/v1/jobs", {"page_size": 2}).json()
    second = api.get(first["next"]).json()
    assert [j["input_summary"] for j in first["results"] + second["results"]] == [
        "job 2",
        "job 1",
        "job 0",
    ]


# --- types ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("title", 42, "Send text (a JSON string), not number."),
        ("document", ["a"], "Send text (a JSON string), not array."),
        ("sensitive", "true", "Send true or false, not string."),
    ],
)
def test_input_is_checked_against_the_published_schema(api, field, value, message):
    body = assert_problem(submit(api, with_input(**{field: value})), 400)
    assert body["errors"] == {f"input.{field}": [message]}
    assert not Job.objects.exists()


def test_a_decimal_field_takes_the_string_its_schema_publishes(api):
    refund = {
        "job_type": "issue_refund",
        "input": {
            "order_reference": "A-1",
            "amount": 12.5,
            "customer_email": "a@example.com",
            "reason": "Broken on arrival",
        },
    }
    body = assert_problem(submit(api, refund), 400)
    assert list(body["errors"]) == ["input.amount"]
    refund["input"]["amount"] = "12.50"
    assert submit(api, refund).status_code == 201
