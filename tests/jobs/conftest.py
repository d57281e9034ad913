import pytest

from fake_openai.testing import FakeServer
from jobs.provider.client import reset_clients


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
