"""The ops controls: pause/drain/resume of dispatch and the bulk retry of failures."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from jobs import execution, services
from jobs.models import DispatchPause, Job, JobEvent, Status
from ops.models import OpsAction
from tests.factories import WorkspaceFactory, member_of
from tests.ops.conftest import finished_job

DISPATCH = reverse("ops:dispatch")
RETRY = reverse("ops:retry-failures")


def _submit(workspace):
    return services.submit_job(
        workspace=workspace,
        submitter=member_of(workspace),
        job_type="summarize_document",
        input={"title": "Report", "document": "Quarterly numbers."},
    )


@pytest.mark.django_db(transaction=True)
def test_pause_holds_dispatch_until_resume(fake, client):
    workspace = WorkspaceFactory()
    admin = member_of(workspace, Role.ADMIN)
    client.force_login(admin)
    client.post(DISPATCH, {"workspace": workspace.pk, "action": "pause", "confirm": "yes"})
    other_workspace_job = _submit(WorkspaceFactory())
    job = _submit(workspace)

    execution.dispatch_job(job.pk)
    execution.dispatch_job(other_workspace_job.pk)

    job = Job.objects.get(pk=job.pk)
    assert job.status == Status.QUEUED and not job.attempts.exists()
    assert "administrator paused" in job.wait_reason
    assert Job.objects.get(pk=other_workspace_job.pk).attempts.exists()  # only this workspace

    client.post(DISPATCH, {"workspace": workspace.pk, "action": "resume", "confirm": "yes"})
    Job.objects.filter(pk=job.pk).update(next_poll_at=timezone.now())
    execution.dispatch_job(job.pk)

    job = Job.objects.get(pk=job.pk)
    assert job.attempts.count() == 1 and job.wait_reason == ""
    assert list(OpsAction.objects.values_list("kind", flat=True).order_by("created_at")) == [
        "pause",
        "resume",
    ]


@pytest.mark.django_db
def test_drain_shows_in_flight_count(admin_client, workspace):
    from tests.factories import JobFactory

    JobFactory.create_batch(2, workspace=workspace, status=Status.RUNNING)
    admin_client.post(DISPATCH, {"workspace": workspace.pk, "action": "drain", "confirm": "yes"})

    page = admin_client.get(reverse("ops:dashboard")).content.decode()

    assert DispatchPause.objects.get(workspace=workspace).mode == "drain"
    assert "Draining" in page and 'data-in-flight="2"' in page


@pytest.mark.django_db
def test_controls_need_confirmation(admin_client, workspace):
    response = admin_client.post(
        DISPATCH, {"workspace": workspace.pk, "action": "pause"}, follow=True
    )
    assert "tick the box" in response.content.decode()
    assert not DispatchPause.objects.exists() and not OpsAction.objects.exists()


@pytest.mark.django_db
def test_controls_refuse_other_workspaces(admin_client):
    other = WorkspaceFactory()
    response = admin_client.post(
        DISPATCH, {"workspace": other.pk, "action": "pause", "confirm": "yes"}
    )
    assert response.status_code == 404
    assert not DispatchPause.objects.exists()


@pytest.mark.django_db
def test_controls_are_post_only(admin_client):
    assert admin_client.get(DISPATCH).status_code == 405


@pytest.mark.django_db(transaction=True)
def test_retry_all_retries_retryable_failures_of_a_kind_and_reports_refusals(client):
    workspace = WorkspaceFactory()
    admin = member_of(workspace, Role.ADMIN)
    client.force_login(admin)
    retryable = finished_job(
        workspace,
        status=Status.FAILED,
        fields={"failure_kind": "provider", "failure_retryable": True, "attempt_count": 1},
    )
    used_up = finished_job(
        workspace,
        status=Status.FAILED,
        fields={"failure_kind": "provider", "failure_retryable": True, "attempt_count": 3},
    )
    not_retryable = finished_job(
        workspace, status=Status.FAILED, fields={"failure_kind": "provider"}
    )
    other_kind = finished_job(
        workspace,
        status=Status.FAILED,
        fields={"failure_kind": "input", "failure_retryable": True},
    )

    response = client.post(
        RETRY,
        {"workspace": workspace.pk, "kind": "provider", "window": "24h", "confirm": "yes"},
        follow=True,
    )

    page = response.content.decode()
    assert "Retried 1 provider failures" in page
    assert f"Job {str(used_up.pk)[:8]} was not retried" in page
    statuses = dict(Job.objects.values_list("pk", "status"))
    assert statuses[retryable.pk] == Status.QUEUED
    assert statuses[used_up.pk] == statuses[not_retryable.pk] == statuses[other_kind.pk] == "failed"
    assert JobEvent.objects.filter(job=retryable, kind="retried", actor=admin).exists()
    action = OpsAction.objects.get(kind="retry_failures")
    assert action.data["retried"] == [str(retryable.pk)]
    assert [job_id for job_id, _ in action.data["refused"]] == [str(used_up.pk)]


@pytest.mark.django_db
def test_retry_all_rejects_an_unknown_kind(admin_client, workspace):
    response = admin_client.post(
        RETRY, {"workspace": workspace.pk, "kind": "bogus", "confirm": "yes"}, follow=True
    )
    assert "Choose a failure kind" in response.content.decode()
    assert not OpsAction.objects.exists()


@pytest.mark.django_db
def test_failures_outside_the_window_are_not_retried(admin_client, workspace):
    old = finished_job(
        workspace,
        status=Status.FAILED,
        ago=timedelta(days=3),
        fields={"failure_kind": "timeout", "failure_retryable": True},
    )
    admin_client.post(
        RETRY, {"workspace": workspace.pk, "kind": "timeout", "window": "24h", "confirm": "yes"}
    )
    assert Job.objects.get(pk=old.pk).status == Status.FAILED
