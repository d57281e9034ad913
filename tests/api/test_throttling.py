"""Throttling per token and per user: 429 problem details with Retry-After."""

import pytest

from tests.api.conftest import bearer
from tests.factories import member_of


@pytest.fixture
def rates(settings):
    def set_rates(**rates):
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {"user": "1000/min", "token": "1000/min", **rates},
        }

    return set_rates


def test_a_token_over_its_rate_gets_429_with_retry_after(rates, member):
    rates(token="2/min")
    first, other_token = bearer(member, "script"), bearer(member, "laptop")
    assert [first.get("/api/v1/jobs").status_code for _ in range(2)] == [200, 200]
    response = first.get("/api/v1/jobs")
    assert response.status_code == 429
    assert response["Content-Type"] == "application/problem+json"
    assert 0 < int(response["Retry-After"]) <= 60
    body = response.json()
    assert body["type"] == "urn:steward:problem:throttled" and body["status"] == 429
    assert "throttled" in body["detail"]
    # The budget is the token's: the same user's other token still works.
    assert other_token.get("/api/v1/jobs").status_code == 200


def test_a_user_over_the_rate_is_throttled_across_all_their_tokens(rates, member, workspace):
    rates(user="3/min")
    one, two = bearer(member, "one"), bearer(member, "two")
    codes = [client.get("/api/v1/jobs").status_code for client in (one, two, one, two)]
    assert codes == [200, 200, 200, 429]
    assert bearer(member_of(workspace)).get("/api/v1/jobs").status_code == 200


def test_throttled_writes_are_refused_before_they_happen(rates, member):
    from jobs.models import Job

    rates(token="1/min")
    client = bearer(member)
    body = {"job_type": "summarize_document", "input": {"title": "T", "document": "D"}}
    assert client.post("/api/v1/jobs", body, content_type="application/json").status_code == 201
    assert client.post("/api/v1/jobs", body, content_type="application/json").status_code == 429
    assert Job.objects.count() == 1
