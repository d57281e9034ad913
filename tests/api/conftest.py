"""Fixtures for the REST API tests: people in each role and clients holding their tokens."""

import pytest
from django.core.cache import cache
from django.test import Client

from accounts.models import Role
from accounts.services import create_api_token
from tests.factories import WorkspaceFactory, member_of


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
def member(workspace):
    return member_of(workspace, Role.MEMBER)


@pytest.fixture
def reviewer(workspace):
    return member_of(workspace, Role.REVIEWER)


@pytest.fixture
def admin(workspace):
    return member_of(workspace, Role.ADMIN)


@pytest.fixture
def outsider(db):
    """An admin of another workspace: sees nothing of ``workspace``."""
    return member_of(WorkspaceFactory(), Role.ADMIN)


@pytest.fixture
def api(member):
    return bearer(member)


def post_json(client, path, body=None, **headers):
    return client.post(path, body or {}, content_type="application/json", headers=headers)
