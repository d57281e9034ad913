"""Fixtures for the REST API tests: people in each role and clients holding their tokens."""

import pytest
from django.core.cache import cache
from django.test import Client

from accounts.services import create_api_token


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    """Throttle counts live in the cache; one test's requests must not count in the next."""
    cache.clear()
    yield
    cache.clear()


def bearer(user, name="tests"):
    """A client that authenticates as ``user`` with a new API token (``client.token``)."""
    token, secret = create_api_token(user=user, name=name)
    client = Client(headers={"Authorization": f"Bearer {secret}"})
    client.token, client.secret = token, secret
    return client


@pytest.fixture
def api(member):
    return bearer(member)


def post_json(client, path, body=None, **headers):
    return client.post(path, body or {}, content_type="application/json", headers=headers)


def review_url(job, action):
    return f"/api/v1/review/{job.pk}/{action}"


@pytest.fixture
def claimed(people, draft):
    """A client for ``people["reviewer"]``, who holds the claim on ``draft``."""
    client = bearer(people["reviewer"])
    assert post_json(client, review_url(draft, "claim")).status_code == 200
    return client
