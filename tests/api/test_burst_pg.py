"""A burst of API submits wider than PostgreSQL lets the web server connect: never a 500.

Steward under uvicorn runs as a role allowed 12 connections, and 200 submits arrive at once.
Each web process holds at most ``DATABASE_POOL_SIZE`` connections; a request that cannot get one
in time is answered 503 with ``Retry-After`` (before the pool, ~6 % of such a burst got HTML 500s:
"sorry, too many clients already"). A client that retries its 503s with the same
Idempotency-Key ends with exactly one job per key.
"""

import http.client
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from accounts.services import create_api_token
from jobs.models import Job, JobEvent
from tests.factories import member_of
from tests.processes import web_server

pytestmark = [pytest.mark.pg, pytest.mark.django_db(transaction=True)]

BURST = 200


def submit(port, token, key):
    body = json.dumps(
        {
            "job_type": "summarize_document",
            "input": {"title": key, "document": "Burst [fake:duration=60]"},
        }
    )
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Idempotency-Key": key,
    }
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        client.request("POST", "/api/v1/jobs", body=body, headers=headers)
        response = client.getresponse()
        return response.status, response.getheader("Retry-After"), response.read()
    finally:
        client.close()


def test_a_burst_of_submits_wider_than_the_connection_limit_gets_no_500(
    workspace, role_with_few_connections
):
    _, token = create_api_token(user=member_of(workspace), name="burst")
    keys = [f"burst-{n}" for n in range(BURST)]
    with web_server(
        role_with_few_connections, API_THROTTLE_TOKEN="100000/min", API_THROTTLE_USER="100000/min"
    ) as port:
        start = threading.Barrier(BURST)

        def send(key):
            start.wait()
            return submit(port, token, key)

        with ThreadPoolExecutor(BURST) as pool:
            answers = dict(zip(keys, pool.map(send, keys), strict=True))
        statuses = sorted({status for status, _, _ in answers.values()})
        assert set(statuses) <= {201, 503}, statuses
        for status, retry_after, _ in answers.values():
            if status == 503:
                assert int(retry_after) > 0
        # the client retries what was refused, as Retry-After invites it to
        retried = {key: submit(port, token, key) for key, a in answers.items() if a[0] == 503}
    assert all(status == 201 for status, _, _ in retried.values())
    jobs = Job.objects.filter(workspace=workspace)
    assert sorted(jobs.values_list("idempotency_key", flat=True)) == sorted(keys)
    assert JobEvent.objects.filter(job__in=jobs, kind="submitted").count() == BURST
    first_ids = {json.loads(a[2])["id"] for a in answers.values() if a[0] == 201}
    assert first_ids <= {str(pk) for pk in jobs.values_list("pk", flat=True)}
