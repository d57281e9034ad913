"""The retention purge: content past a workspace's retention goes, the audit skeleton stays."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_q.models import Schedule

from accounts.models import Role
from jobs import services
from jobs.models import Artifact, Attempt, Job, JobEvent, Status
from jobs.retention import purge_expired_content
from review.models import Decision
from tests.factories import JobFactory, WorkspaceFactory, member_of

pytestmark = pytest.mark.django_db


def old_job(workspace, *, days_ago=40, status=Status.COMPLETED):
    """A finished job with everything retention touches: input, attempt, artifacts, partial
    text events, a decision."""
    job = JobFactory(workspace=workspace, status=status, input_tokens=50, cost=Decimal("0.2"))
    finished = timezone.now() - timedelta(days=days_ago)
    Job.objects.filter(pk=job.pk).update(finished_at=finished, completed_at=finished)
    attempt = Attempt.objects.create(
        job=job,
        number=1,
        state=Attempt.State.SUCCEEDED,
        instructions="Summarise: secret plans",
        output={"text": "secret summary"},
        cost=Decimal("0.2"),
        input_tokens=50,
        output_tokens=20,
    )
    services.add_artifact(job=job, kind="text", text="secret summary", attempt=attempt)
    services.add_artifact(job=job, kind="json", data={"tags": ["secret"]}, attempt=attempt)
    services.record_event(
        job, "partial_output", actor="system:stream", data={"seq": 4, "text": "secret par"}
    )
    Decision.objects.create(
        job=job, reviewer=member_of(workspace, Role.REVIEWER), kind="approve", note="fine"
    )
    job.refresh_from_db()
    return job


def retention(input_days=None, output_days=None):
    return WorkspaceFactory(input_retention_days=input_days, output_retention_days=output_days)


def test_purge_removes_content_and_keeps_the_audit_skeleton():
    workspace = retention(input_days=30, output_days=30)
    job = old_job(workspace)
    events_before = JobEvent.objects.filter(job=job).count()

    assert purge_expired_content() == {"jobs": 1}

    job.refresh_from_db()
    assert job.input == {} and job.input_summary == ""
    assert job.input_purged_at and job.output_purged_at
    # the skeleton stays
    assert job.job_type == "summarize_document" and job.status == Status.COMPLETED
    assert job.cost == Decimal("0.2") and job.input_tokens == 50 and job.finished_at
    attempt = job.attempts.get()
    assert attempt.instructions == "" and attempt.output is None
    assert attempt.cost == Decimal("0.2") and attempt.output_tokens == 20
    assert set(Artifact.objects.filter(job=job).values_list("kind", "version")) == {
        ("text", 1),
        ("json", 1),
    }
    assert not Artifact.objects.filter(job=job).exclude(text="").exists()
    assert not Artifact.objects.filter(job=job, data__isnull=False).exists()
    assert Decision.objects.get(job=job).kind == "approve"
    partial = JobEvent.objects.get(job=job, kind="partial_output")
    assert partial.data == {"seq": 4, "purged": True}
    assert "secret" not in str(list(JobEvent.objects.filter(job=job).values_list("data")))
    purged = JobEvent.objects.get(job=job, kind="purged")
    assert purged.actor_label == "system:retention"
    assert purged.data["parts"] == ["input", "output"]
    assert JobEvent.objects.filter(job=job).count() == events_before + 1


def test_purge_is_idempotent():
    job = old_job(retention(input_days=30, output_days=30))
    purge_expired_content()

    assert purge_expired_content() == {"jobs": 0}
    assert JobEvent.objects.filter(job=job, kind="purged").count() == 1


def test_input_and_output_limits_apply_separately():
    workspace = retention(input_days=30, output_days=60)
    job = old_job(workspace, days_ago=40)

    purge_expired_content()

    job.refresh_from_db()
    assert job.input == {} and job.output_purged_at is None
    assert Artifact.objects.get(job=job, kind="text").text == "secret summary"
    assert JobEvent.objects.get(job=job, kind="purged").data["parts"] == ["input"]
    # twenty-one days later the outputs go too, with a second event
    purge_expired_content(now=timezone.now() + timedelta(days=21))
    assert Artifact.objects.get(job=job, kind="text").text == ""
    assert JobEvent.objects.filter(job=job, kind="purged").count() == 2


def test_workspaces_without_retention_keep_everything():
    job = old_job(retention(), days_ago=4000)
    other = old_job(retention(output_days=30), days_ago=10)  # not old enough yet

    assert purge_expired_content() == {"jobs": 0}
    for kept in (job, other):
        kept.refresh_from_db()
        assert kept.input["title"] == "Quarterly report"
        assert Artifact.objects.get(job=kept, kind="text").text == "secret summary"
        assert not JobEvent.objects.filter(job=kept, kind="purged").exists()


def test_unfinished_jobs_are_never_purged():
    workspace = retention(input_days=1, output_days=1)
    job = JobFactory(workspace=workspace, status=Status.NEEDS_REVIEW)
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(days=90))

    assert purge_expired_content() == {"jobs": 0}
    job.refresh_from_db()
    assert job.input["title"] == "Quarterly report"


def test_purged_events_stay_append_only_for_everyone_else():
    job = old_job(retention(output_days=30))
    event = JobEvent.objects.get(job=job, kind="partial_output")
    event.data = {}
    from jobs.models import AppendOnlyError

    with pytest.raises(AppendOnlyError):
        event.save()


def test_daily_schedule_is_installed():
    schedule = Schedule.objects.get(name="steward-retention-purge")
    assert schedule.func == "jobs.tasks.purge_expired_content"
    assert schedule.schedule_type == Schedule.DAILY
