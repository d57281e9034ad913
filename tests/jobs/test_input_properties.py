"""Property tests: whatever a client sends as a job's input, Steward answers with a 4xx or
stores something every database can hold; it never fails with a 5xx.

Hypothesis draws values for every input field kind (text, textarea, choice, decimal, email,
boolean) from all of Unicode, NUL and lone surrogates included, deep JSON and huge strings, and
sends them through the field rules and through the API.
"""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.text import text_problem
from jobs.job_types import all_job_types
from jobs.models import Job
from tests.api.conftest import bearer

# Every code point, surrogates too (Hypothesis leaves those out unless asked).
ANY_CHARACTER = st.characters(exclude_categories=())
HOSTILE_TEXT = st.one_of(
    st.text(ANY_CHARACTER, max_size=50),
    st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfffy", " ", "١٢٫٥", "1e5", "NaN"]),
    st.integers(0, 60_000).map(lambda n: "x" * n),
)
JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    HOSTILE_TEXT,
)
ANY_JSON = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(HOSTILE_TEXT, inner, max_size=4),
    max_leaves=12,
)
FIELDS = [(job_type, spec) for job_type in all_job_types() for spec in job_type.fields]
KINDS = sorted({spec.kind for _, spec in FIELDS})


def fields_of_kind(kind):
    return [pair for pair in FIELDS if pair[1].kind == kind]


def test_the_demo_job_types_cover_every_field_kind():
    assert KINDS == ["boolean", "choice", "decimal", "email", "text", "textarea"]


def storable(value):
    """Whether every string in ``value`` can be stored (config.text)."""
    if isinstance(value, str):
        return text_problem(value) is None
    if isinstance(value, dict):
        return all(storable(k) and storable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(storable(item) for item in value)
    return True


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=100, deadline=None)
@given(raw=ANY_JSON)
def test_a_field_either_refuses_a_value_or_cleans_it_to_storable_text(kind, raw):
    for _, spec in fields_of_kind(kind):
        value, error = spec.clean(raw)
        assert (error is None) == (value is not None)
        if error is None:
            assert storable(value)


@pytest.fixture
def client(member):
    return bearer(member)


def submit(client, body):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8", "surrogatepass")
    return client.post("/api/v1/jobs", raw, content_type="application/json")


@pytest.mark.parametrize("kind", KINDS)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=ANY_JSON)
def test_the_api_answers_any_field_value_with_201_or_400(client, kind, raw):
    job_type, spec = fields_of_kind(kind)[0]
    valid = {"title": "T", "document": "D", "customer_name": "C", "tone": "formal"}
    valid |= {"message": "M", "order_reference": "O", "amount": "1.00", "reason": "R"}
    valid |= {"customer_email": "a@example.com", "ticket": "T", "subject": "S", "body": "B"}
    body = {f.name: valid.get(f.name, "x") for f in job_type.fields if f.kind != "boolean"}
    body[spec.name] = raw
    before = Job.objects.count()
    response = submit(client, {"job_type": job_type.name, "input": body})
    assert response.status_code in (201, 400), response.content[:200]
    if response.status_code == 201:
        job = Job.objects.get(pk=response.json()["id"])
        assert storable(job.input) and storable(job.input_summary)
    else:
        assert Job.objects.count() == before
        assert response.json()["status"] == 400


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(
        ANY_JSON.map(lambda v: json.dumps(v).encode("utf-8", "surrogatepass")),
        st.integers(1, 20_000).map(lambda d: ("[" * d + "]" * d).encode()),
        st.integers(1, 20_000).map(lambda d: ('{"a":' * d + "1" + "}" * d).encode()),
        st.binary(max_size=200),
    )
)
def test_the_api_answers_any_body_with_a_4xx(client, body):
    response = submit(client, body)
    assert 400 <= response.status_code < 500, response.content[:200]
    assert response["Content-Type"] == "application/problem+json"
