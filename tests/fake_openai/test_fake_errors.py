"""Errors, scripted per-response failures and random faults from ``/_fake/config``."""

from __future__ import annotations

import time

import httpx2 as httpx
import openai
import pytest
from fake_openai_helpers import HTTP, fast

INPUT = "Please summarise the quarterly report."


def _create(client, **meta):
    return client.responses.create(model="m", input=INPUT, background=True, metadata=meta)


def test_rate_limit_429_carries_retry_after(client):
    with pytest.raises(openai.RateLimitError) as err:
        _create(client, job_id="j1", fake_create_errors="429", fake_retry_after="3")
    assert err.value.code == "rate_limit_exceeded"
    assert err.value.response.headers["retry-after"] == "3"
    assert err.value.response.headers["x-ratelimit-remaining-requests"] == "0"
    assert err.value.request_id.startswith("req_")


def test_insufficient_quota_429_has_no_retry_after(client):
    with pytest.raises(openai.RateLimitError) as err:
        _create(client, job_id="j2", fake_create_errors="insufficient_quota")
    assert err.value.code == "insufficient_quota" and err.value.type == "insufficient_quota"
    assert "retry-after" not in err.value.response.headers


def test_create_errors_then_success_keyed_by_job_id(client, server):
    meta = fast(job_id="job-7", fake_create_errors="429,500,503")
    raised = []
    for _ in range(3):
        with pytest.raises(openai.APIStatusError) as err:
            _create(client, **meta)
        raised.append(err.value.status_code)
    assert raised == [429, 500, 503]
    resp = _create(client, **meta)
    assert resp.status == "queued"
    with pytest.raises(openai.RateLimitError):
        _create(client, **{**meta, "job_id": "job-8"})
    assert server.stats()["routes"]["create"] == 5


def test_create_errors_keyed_by_input_without_job_id(client):
    with pytest.raises(openai.InternalServerError):
        _create(client, fake_create_errors="500")
    assert _create(client, fake_create_errors="500").status == "queued"


def test_sdk_retries_through_scripted_500_and_logs_retry_count(server):
    client = server.client(max_retries=1)
    resp = _create(client, job_id="retry-1", fake_create_errors="500", **fast())
    assert resp.id.startswith("resp_")
    creates = [e for e in server.log() if e["route"] == "create"]
    assert [(e["status"], e["retry_count"]) for e in creates] == [(500, "0"), (200, "1")]


def test_retrieve_errors_hit_the_first_retrieves(client):
    resp = _create(client, fake_retrieve_errors="503,429", fake_retry_after="1")
    with pytest.raises(openai.InternalServerError) as err:
        client.responses.retrieve(resp.id)
    assert err.value.status_code == 503
    with pytest.raises(openai.RateLimitError):
        client.responses.retrieve(resp.id)
    assert client.responses.retrieve(resp.id).id == resp.id


def test_scripted_reset_drops_the_connection(client):
    with pytest.raises(openai.APIConnectionError):
        _create(client, job_id="r1", fake_create_errors="reset")
    assert _create(client, job_id="r1").status == "queued"


def test_bad_params_are_400_with_param(server):
    url = server.base_url + "/responses"
    cases = [
        ({"input": "x"}, "model"),
        ({"model": "m"}, "input"),
        ({"model": "m", "input": "x", "metadata": {"n": 1}}, "metadata"),
        ({"model": "m", "input": "x", "background": True, "store": False}, "store"),
        ({"model": "m", "input": "x", "metadata": {"fake_outcome": "exploded"}}, "metadata"),
        ({"model": "m", "input": "x", "max_output_tokens": 3}, "max_output_tokens"),
    ]
    http = httpx.Client()
    for body, param in cases:
        reply = http.post(url, json=body)
        assert reply.status_code == 400, body
        assert reply.json()["error"]["param"] == param
        assert reply.json()["error"]["type"] == "invalid_request_error"
        assert reply.headers["x-request-id"].startswith("req_")
    broken = http.post(url, content=b"{nope", headers={"content-type": "application/json"})
    assert broken.status_code == 400
    http.close()


def test_unknown_id_and_url_are_404(server):
    reply = HTTP.get(server.base_url + "/responses/resp_doesnotexist")
    assert reply.status_code == 404 and reply.json()["error"]["code"] == "not_found"
    assert reply.headers["x-request-id"].startswith("req_")
    other = HTTP.get(server.base_url + "/files")
    assert other.status_code == 404 and other.headers["x-request-id"].startswith("req_")


@pytest.mark.parametrize(
    ("fault", "exc", "status"),
    [
        ("429", openai.RateLimitError, 429),
        ("insufficient_quota", openai.RateLimitError, 429),
        ("500", openai.InternalServerError, 500),
        ("503", openai.InternalServerError, 503),
    ],
)
def test_global_fault_rates(client, server, fault, exc, status):
    server.configure(faults={fault: 1.0}, retry_after=2, fault_routes=["create"])
    with pytest.raises(exc) as err:
        _create(client)
    assert err.value.status_code == status
    has_retry_after = "retry-after" in err.value.response.headers
    assert has_retry_after == (fault == "429")
    assert server.log()[-1]["fault"] == fault


def test_global_reset_slow_and_malformed(client, server):
    server.configure(faults={"reset": 1.0})
    with pytest.raises(openai.APIConnectionError):
        _create(client)
    server.configure(faults={"slow": 1.0}, slow_seconds=0.3)
    started = time.monotonic()
    assert _create(client).status == "queued"
    assert time.monotonic() - started >= 0.3
    server.configure(faults={"malformed": 1.0})
    reply = HTTP.post(server.base_url + "/responses", json={"model": "m", "input": "x"})
    assert reply.status_code == 200
    with pytest.raises(ValueError):
        reply.json()


def test_should_retry_header_on_injected_errors(client, server):
    server.configure(faults={"500": 1.0}, should_retry=False)
    with pytest.raises(openai.InternalServerError) as err:
        _create(client)
    assert err.value.response.headers["x-should-retry"] == "false"


def test_seed_replays_the_same_fault_pattern(server):
    def pattern() -> list[int]:
        server.reset(seed=11, faults={"500": 0.5})
        with httpx.Client(base_url=server.base_url) as http:
            return [http.get("/responses/resp_x").status_code for _ in range(12)]

    first, second = pattern(), pattern()
    assert first == second and {404, 500} == set(first)


def test_config_rejects_unknown_fields(server):
    reply = HTTP.post(server.url + "/_fake/config", json={"faults": {"teapot": 1}})
    assert reply.status_code == 400
    reply = HTTP.post(server.url + "/_fake/config", json={"nonsense": 1})
    assert reply.status_code == 400 and "nonsense" in reply.json()["error"]


def test_retry_after_above_120s_makes_the_sdk_give_up(server):
    client = server.client(max_retries=2)
    started = time.monotonic()
    with pytest.raises(openai.RateLimitError) as err:
        _create(client, job_id="long-wait", fake_create_errors="429,429", fake_retry_after="180")
    assert err.value.response.headers["retry-after"] == "180"
    assert time.monotonic() - started < 1
    assert [e["status"] for e in server.log() if e["route"] == "create"] == [429]
