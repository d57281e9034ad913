import os

import pytest
from django.conf import settings
from django.db import connection

from accounts.models import Role
from fake_openai.testing import FakeServer
from jobs import services as job_services
from jobs.execution import pacing
from jobs.execution.provider.client import reset_clients
from jobs.models import Artifact, ReviewState, Status
from jobs.services import base as services_base
from tests.factories import JobFactory, WorkspaceFactory, member_of

CHAOS_TIMEOUT = 1200  # seconds; the ini's timeout covers every other test


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "chaos" in item.keywords:
            item.add_marker(pytest.mark.timeout(CHAOS_TIMEOUT))
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


# --- people in each role of ``workspace``, and a draft waiting for review ---------------------


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
def people(member, reviewer, admin, outsider):
    return {"member": member, "reviewer": reviewer, "admin": admin, "outsider": outsider}


@pytest.fixture
def draft(workspace, member):
    """A support reply draft by ``member`` waiting for review, with the model's text."""
    job = JobFactory(
        workspace=workspace,
        submitter=member,
        job_type="draft_support_reply",
        authority_class="draft",
        lane="stream",
        input={"customer_name": "Ada", "tone": "friendly", "message": "Where is my order?"},
        input_summary="Ada",
        status=Status.NEEDS_REVIEW,
        review_state=ReviewState.PENDING,
        attempt_count=1,
    )
    job_services.add_artifact(job=job, kind=Artifact.Kind.TEXT, text="Hi Ada, it ships today.")
    return job


@pytest.fixture
def role_with_few_connections():
    """A PostgreSQL role that may hold 12 connections, with the test tables granted to it."""
    role = f"steward_burst_{os.getpid()}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 12")
        cursor.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}")
        cursor.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}")
    yield role
    with connection.cursor() as cursor:
        cursor.execute(f"DROP OWNED BY {role}")
        cursor.execute(f"DROP ROLE {role}")


@pytest.fixture
def empty_task_queue():
    """Tasks earlier tests left in this queue name jobs that no longer exist (the Redis broker
    keeps them across tests; the ORM broker's go with each test's flush); drop them so the
    workers a test starts run only what it enqueued."""
    from django_q.brokers import get_broker

    get_broker().purge_queue()
