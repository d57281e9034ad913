import pytest
from django.conf import settings

from fake_openai.testing import FakeServer
from jobs.execution import pacing
from jobs.provider.client import reset_clients
from jobs.services import base as services_base


def pytest_collection_modifyitems(config, items):
    if settings.IS_POSTGRES:
        return
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL=postgres://...)")
    for item in items:
        if "pg" in item.keywords:
            item.add_marker(skip_pg)


@pytest.fixture
def workspace(db):
    from tests.factories import WorkspaceFactory

    return WorkspaceFactory()


@pytest.fixture
def submitter(workspace):
    from tests.factories import member_of

    return member_of(workspace)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """PBKDF2 is slow on purpose; tests only need passwords that check."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_process_caches():
    """Each test starts without what an earlier one left in per-process caches: run times the
    pacing learned, whether the pumps were beating."""

    def forget():
        pacing.forget_learned()
        services_base.forget_pumps_seen()

    forget()
    yield
    forget()


@pytest.fixture(scope="session")
def fake_server():
    with FakeServer(seed=7) as server:
        yield server


@pytest.fixture
def fake(fake_server, settings):
    """The fake OpenAI server, reset, with Steward's provider settings pointing at it."""
    fake_server.reset()
    settings.OPENAI_API_KEY = ""
    settings.OPENAI_BASE_URL = fake_server.base_url
    settings.FAKE_OPENAI_DEFAULTS = {"fake_duration": "0.3"}
    settings.POLL_MIN_INTERVAL = 0.2
    settings.PROVIDER_TIMEOUT = 5.0
    settings.OPENAI_WEBHOOKS_ENABLED = False
    reset_clients()
    yield fake_server
    reset_clients()
