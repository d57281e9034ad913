"""Outgoing webhooks: signed so the receiver can verify them, retried with backoff, logged."""

import ipaddress
import json
import socket
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule
from standardwebhooks import Webhook

from jobs import services
from jobs.models import FailureKind
from notifications import services as notify
from notifications import tasks
from notifications.errors import NotAWorkspaceAdmin
from notifications.models import WebhookDelivery, WebhookEndpoint
from tests.factories import JobFactory
from tests.jobs import progress

pytestmark = pytest.mark.django_db


@pytest.fixture
def endpoint(workspace, admin, receiver):
    return notify.register_endpoint(workspace=workspace, actor=admin, url=receiver.url)


def finish_a_job(workspace, capture):
    job = JobFactory(workspace=workspace, input_summary="Board minutes")
    with capture(execute=True):
        attempt = progress.start(job)
    with capture(execute=True):
        progress.finish(job, attempt)
    return job


def test_delivery_verifies_with_the_receivers_secret(
    workspace, endpoint, receiver, tasks_run_inline, django_capture_on_commit_callbacks
):
    job = finish_a_job(workspace, django_capture_on_commit_callbacks)
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    payload = Webhook(endpoint.secret).verify(request["body"], request["headers"])
    assert payload["type"] == "job.completed"
    assert payload["data"]["job_id"] == str(job.pk)
    assert payload["data"]["status"] == "completed"
    assert payload["data"]["url"].endswith(f"/jobs/{job.pk}/")
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == WebhookDelivery.State.DELIVERED
    assert (delivery.attempts, delivery.last_status_code) == (1, 200)


def test_a_different_secret_does_not_verify(
    workspace, endpoint, receiver, tasks_run_inline, django_capture_on_commit_callbacks
):
    finish_a_job(workspace, django_capture_on_commit_callbacks)
    request = receiver.requests[0]
    from standardwebhooks.webhooks import WebhookVerificationError

    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "QUJD" * 8).verify(request["body"], request["headers"])


def test_server_error_is_retried_with_backoff_until_delivered(
    workspace, endpoint, receiver, tasks_run_inline, django_capture_on_commit_callbacks
):
    receiver.statuses = [500, 503]
    finish_a_job(workspace, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == WebhookDelivery.State.RETRYING
    assert delivery.last_error.startswith("HTTP 500")
    first_wait = delivery.next_attempt_at - timezone.now()
    assert timedelta(seconds=20) < first_wait < timedelta(seconds=40)
    assert Schedule.objects.filter(func="notifications.tasks.deliver_webhook").exists()

    assert tasks.deliver_webhook(delivery.pk) == "retrying"  # not due yet: nothing is sent
    assert len(receiver.requests) == 1

    with time_machine.travel(delivery.next_attempt_at + timedelta(seconds=1)):
        tasks.deliver_webhook(delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.last_status_code) == ("retrying", 2, 503)
    second_wait = delivery.next_attempt_at - (delivery.updated_at)
    assert second_wait > first_wait  # the pause grows

    with time_machine.travel(delivery.next_attempt_at + timedelta(seconds=1)):
        tasks.deliver_webhook(delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == ("delivered", 3)
    ids = {r["headers"]["webhook-id"] for r in receiver.requests}
    assert len(receiver.requests) == 3 and len(ids) == 1  # one message id across retries
    for request in receiver.requests:
        Webhook(endpoint.secret).verify(request["body"], request["headers"])


def test_gives_up_after_the_limit_and_logs_the_failure(
    settings,
    workspace,
    endpoint,
    receiver,
    admin,
    client,
    tasks_run_inline,
    django_capture_on_commit_callbacks,
):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    receiver.statuses = [500] * 10
    finish_a_job(workspace, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get()
    for _ in range(5):
        if delivery.next_attempt_at is None:
            break
        with time_machine.travel(delivery.next_attempt_at + timedelta(seconds=1)):
            tasks.retry_due_deliveries()
        delivery.refresh_from_db()
    assert delivery.state == WebhookDelivery.State.FAILED
    assert delivery.attempts == 3
    assert delivery.next_attempt_at is None
    assert delivery.last_error.startswith("HTTP 500")
    assert len(receiver.requests) == 3

    client.force_login(admin)
    html = client.get(reverse("webhook-deliveries", args=[workspace.slug])).content.decode()
    assert "job.completed" in html and "Failed" in html and "3 / 3" in html
    assert "HTTP 500" in html


def test_unreachable_endpoint_never_affects_the_job(
    workspace, admin, tasks_run_inline, django_capture_on_commit_callbacks, settings
):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    notify.register_endpoint(
        workspace=workspace, actor=admin, url=f"http://127.0.0.1:{dead_port}/gone"
    )
    job = JobFactory(workspace=workspace)
    with django_capture_on_commit_callbacks(execute=True):
        services.fail_job(job=job, actor="system:poller", kind=FailureKind.TOOL, reason="x")
    job.refresh_from_db()
    assert job.status == "failed"
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == "retrying" and delivery.last_error.startswith("Could not connect")


def test_endpoint_topics_filter_events(
    workspace, admin, receiver, tasks_run_inline, django_capture_on_commit_callbacks
):
    notify.register_endpoint(workspace=workspace, actor=admin, url=receiver.url, topics=["failed"])
    finish_a_job(workspace, django_capture_on_commit_callbacks)
    assert receiver.requests == []


def test_other_workspaces_endpoints_hear_nothing(
    endpoint, receiver, tasks_run_inline, django_capture_on_commit_callbacks
):
    from tests.factories import WorkspaceFactory

    finish_a_job(WorkspaceFactory(), django_capture_on_commit_callbacks)
    assert receiver.requests == []


def test_admin_registers_endpoint_and_sees_the_secret_once(client, workspace, admin, receiver):
    client.force_login(admin)
    url = reverse("webhooks", args=[workspace.slug])
    response = client.post(url, {"url": receiver.url, "description": "CRM"}, follow=True)
    endpoint = workspace.webhook_endpoints.get()
    assert endpoint.secret.startswith("whsec_")
    assert endpoint.secret in response.content.decode()
    assert endpoint.secret not in client.get(url).content.decode()


def test_bad_endpoint_url_is_a_form_error(client, workspace, admin):
    client.force_login(admin)
    response = client.post(reverse("webhooks", args=[workspace.slug]), {"url": "ftp://x"})
    assert response.status_code == 200
    assert 'class="field-error"' in response.content.decode()
    assert not workspace.webhook_endpoints.exists()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/admin/",
        "http://localhost/hook",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "https://10.1.2.3/hook",
        "http://[::1]:9000/hook",
        "http://[::ffff:192.168.0.5]/hook",
    ],
)
def test_private_and_local_addresses_are_refused_with_a_clear_error(client, workspace, admin, url):
    client.force_login(admin)
    response = client.post(reverse("webhooks", args=[workspace.slug]), {"url": url})
    assert response.status_code == 200
    assert "does not send webhooks to private or local addresses" in response.content.decode()
    assert not workspace.webhook_endpoints.exists()


def test_a_name_that_resolves_to_a_private_address_is_refused_at_send_time(
    workspace, admin, receiver, settings, tasks_run_inline, django_capture_on_commit_callbacks
):
    host = socket.gethostname()
    if ipaddress.ip_address(socket.getaddrinfo(host, None)[0][4][0]).is_global:
        pytest.skip("this machine's name resolves to a public address")
    # saved while the name pointed elsewhere (or by a DNS change since): stored as is
    endpoint = WebhookEndpoint.objects.create(
        workspace=workspace, url=receiver.url.replace("127.0.0.1", host), created_by=admin
    )
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False  # the default
    finish_a_job(workspace, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert "private or local addresses" in delivery.last_error
    assert receiver.requests == []  # nothing left Steward


def test_send_test_event_button(
    client, workspace, admin, endpoint, receiver, tasks_run_inline,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    client.force_login(admin)
    url = reverse("webhook-endpoint-action", args=[workspace.slug, endpoint.pk, "test"])
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url)
    body = Webhook(endpoint.secret).verify(
        receiver.requests[0]["body"], receiver.requests[0]["headers"]
    )
    assert body["type"] == "steward.test"
    assert WebhookDelivery.objects.get().state == "delivered"


def test_only_workspace_admins_manage_webhooks(client, workspace, submitter, receiver):
    client.force_login(submitter)
    assert client.get(reverse("webhooks", args=[workspace.slug])).status_code == 404
    with pytest.raises(NotAWorkspaceAdmin):
        notify.register_endpoint(workspace=workspace, actor=submitter, url=receiver.url)


def test_payload_has_no_provider_words(
    workspace, endpoint, receiver, tasks_run_inline, django_capture_on_commit_callbacks
):
    finish_a_job(workspace, django_capture_on_commit_callbacks)
    body = receiver.requests[0]["body"].decode()
    assert "resp_" not in body and "response" not in json.loads(body)["data"]
