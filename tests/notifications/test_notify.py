"""In-app notifications and email: who is told, about what, and what they chose."""

import pytest
from django.core import mail
from django.urls import reverse

from accounts.models import Role
from jobs import hooks, services
from jobs.models import FailureKind
from notifications import services as notify
from notifications.models import Channel, Notification, Topic
from review import services as review
from review.release import release_approved
from tests.factories import JobFactory, WorkspaceFactory, member_of
from tests.jobs import progress
from tests.review.drafts import make_draft

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(workspace, submitter):
    return JobFactory(workspace=workspace, submitter=submitter, input_summary="Board minutes")


def complete(job, capture):
    with capture(execute=True):
        attempt = progress.start(job)
    with capture(execute=True):
        progress.finish(job, attempt)


def test_completion_notifies_in_app_and_by_email(
    job, submitter, tasks_run_inline, django_capture_on_commit_callbacks
):
    complete(job, django_capture_on_commit_callbacks)
    note = Notification.objects.get(user=submitter)
    assert note.topic == Topic.COMPLETED
    assert note.title == "Your job “Board minutes” (Summarize a document) finished"
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == [submitter.email]
    assert email.subject == "[Steward] Your job “Board minutes” (Summarize a document) finished"
    assert f"/jobs/{job.pk}/" in email.body


def test_progress_events_notify_nobody(job, tasks_run_inline, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        progress.start(job)
        progress.stream(job, "Hel", "lo")
    assert Notification.objects.count() == 0
    assert mail.outbox == []


def test_email_off_means_no_email_but_still_in_app(
    job, submitter, tasks_run_inline, django_capture_on_commit_callbacks
):
    notify.set_preferences(user=submitter, enabled={(Channel.IN_APP, t) for t in Topic.values})
    complete(job, django_capture_on_commit_callbacks)
    assert mail.outbox == []
    assert Notification.objects.filter(user=submitter).count() == 1


def test_in_app_off_means_no_notification(
    job, submitter, tasks_run_inline, django_capture_on_commit_callbacks
):
    notify.set_preferences(user=submitter, enabled={(Channel.EMAIL, Topic.COMPLETED)})
    complete(job, django_capture_on_commit_callbacks)
    assert Notification.objects.count() == 0
    assert len(mail.outbox) == 1


def test_failure_email_is_on_by_default_but_cancel_email_is_not(
    workspace, submitter, tasks_run_inline, django_capture_on_commit_callbacks
):
    failing = JobFactory(workspace=workspace, submitter=submitter)
    canceled = JobFactory(workspace=workspace, submitter=submitter)
    admin = member_of(workspace, role="admin")
    with django_capture_on_commit_callbacks(execute=True):
        services.fail_job(
            job=failing, actor="system:poller", kind=FailureKind.TOOL, reason="Tool down."
        )
        services.cancel_job(job=canceled, actor=admin)
    assert [m.subject for m in mail.outbox] == [
        "[Steward] Your job “Quarterly report” (Summarize a document) failed"
    ]
    assert set(Notification.objects.values_list("topic", flat=True)) == {"failed", "canceled"}


def test_nobody_is_notified_of_their_own_action(
    job, submitter, tasks_run_inline, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.cancel_job(job=job, actor=submitter)
    assert Notification.objects.count() == 0


def test_listener_is_idempotent(job, submitter, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        services.fail_job(job=job, actor="system:poller", kind=FailureKind.TOOL, reason="x")
    event = job.events.get(kind="failed")
    notify.on_job_event(event)
    assert Notification.objects.filter(user=submitter).count() == 1


def test_header_shows_unread_count_and_mark_read_clears_it(
    client, job, submitter, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.fail_job(job=job, actor="system:poller", kind=FailureKind.TOOL, reason="x")
    client.force_login(submitter)
    html = client.get(reverse("home")).content.decode()
    assert 'aria-label="1 unread"' in html
    assert client.get(reverse("notification-unread")).json() == {"unread": 1}
    note = Notification.objects.get()
    response = client.get(reverse("notification-open", args=[note.pk]))
    assert response["Location"] == reverse("job-detail", args=[job.pk])
    assert client.get(reverse("notification-unread")).json() == {"unread": 0}


def test_mark_all_read(client, workspace, submitter, django_capture_on_commit_callbacks):
    for _ in range(3):
        job = JobFactory(workspace=workspace, submitter=submitter)
        with django_capture_on_commit_callbacks(execute=True):
            services.fail_job(job=job, actor="system:poller", kind=FailureKind.TOOL, reason="x")
    client.force_login(submitter)
    client.post(reverse("notification-mark-read"), {"all": "1"})
    assert client.get(reverse("notification-unread")).json() == {"unread": 0}


def test_nobody_reads_anothers_notification(
    client, workspace, job, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.fail_job(job=job, actor="system:poller", kind=FailureKind.TOOL, reason="x")
    client.force_login(member_of(workspace))
    note = Notification.objects.get()
    assert client.get(reverse("notification-open", args=[note.pk])).status_code == 404
    note.refresh_from_db()
    assert note.read_at is None


def test_settings_page_saves_choices(client, submitter):
    client.force_login(submitter)
    html = client.get(reverse("notification-settings")).content.decode()
    assert 'name="email:completed" id="pref-email-completed" value="1" checked' in html
    client.post(reverse("notification-settings"), {"in_app:failed": "1"})
    html = client.get(reverse("notification-settings")).content.decode()
    assert 'name="email:completed" id="pref-email-completed" value="1" aria' in html
    assert 'name="in_app:failed" id="pref-in_app-failed" value="1" checked' in html


def test_links_in_notifications_are_the_project_urlconfs(job, settings):
    site = settings.SITE_URL.rstrip("/")
    assert notify.job_url(job) == site + reverse("job-detail", args=[job.pk])
    assert notify.page_url("notification-settings", urlconf="notifications.urls") == (
        site + reverse("notification-settings")
    )


# --- the bell counts what needs the person -----------------------------------------------


def _draft_through_review(workspace, submitter, reviewer, capture, *, job_type):
    # The submission's hand-over to the workers is left out (inline, its pump would run on);
    # the listeners get every event the draft went through, as after its commits.
    job = make_draft(workspace=workspace, submitter=submitter, job_type=job_type)
    hooks.emit_after_commit(list(job.events.order_by("pk")))
    with capture(execute=True):
        review.claim_draft(job=job, reviewer=reviewer)
        review.approve_draft(job=job, reviewer=reviewer)
    if job_type == "issue_refund":
        with capture(execute=True):
            release_approved(job_id=job.pk)
    return job


@pytest.mark.parametrize("job_type", ["draft_support_reply", "issue_refund"])
def test_a_reviewed_job_leaves_one_unread_notice_for_its_submitter(
    workspace, submitter, admin, tasks_run_inline, django_capture_on_commit_callbacks, job_type
):
    """Waiting for review is on the timeline; approval, then the action that ran, is one piece
    of news about one job."""
    job = _draft_through_review(
        workspace, submitter, admin, django_capture_on_commit_callbacks, job_type=job_type
    )
    unread = Notification.objects.filter(user=submitter, read_at=None)
    assert [n.job_id for n in unread] == [job.pk]
    assert not Notification.objects.filter(user=submitter, topic=Topic.NEEDS_REVIEW).exists()


def test_opening_a_job_marks_its_notices_read(
    client, job, submitter, tasks_run_inline, django_capture_on_commit_callbacks
):
    complete(job, django_capture_on_commit_callbacks)
    client.force_login(submitter)
    assert client.get(reverse("notification-unread")).json() == {"unread": 1}
    client.get(reverse("job-detail", args=[job.pk]))
    assert client.get(reverse("notification-unread")).json() == {"unread": 0}
    assert Notification.objects.filter(user=submitter).count() == 1  # still listed, as read


def test_the_live_pages_own_refresh_leaves_notices_unread(
    client, job, submitter, tasks_run_inline, django_capture_on_commit_callbacks
):
    """The header count tells a watcher that the job finished; the page re-reading its
    sections is not the person opening the job."""
    complete(job, django_capture_on_commit_callbacks)
    client.force_login(submitter)
    client.get(reverse("job-detail", args=[job.pk]), headers={"X-Steward-Refresh": "sections"})
    assert client.get(reverse("notification-unread")).json() == {"unread": 1}


def test_a_repeated_event_delivery_leaves_its_notice_unread(
    job, submitter, tasks_run_inline, django_capture_on_commit_callbacks
):
    complete(job, django_capture_on_commit_callbacks)
    event = job.events.get(kind="completed")
    notify.on_job_events([event])  # the listener called again for the same event
    assert Notification.objects.get(user=submitter).read_at is None


def test_reviewers_get_one_digest_of_waiting_drafts_that_opens_the_queue(
    client, workspace, submitter, tasks_run_inline
):
    """Four drafts arrive: each reviewer's bell shows one notice that counts them, and it
    leads to the review queue; the submitter is not told as a reviewer."""
    reviewer = member_of(workspace, Role.REVIEWER, username="rita")
    member_of(WorkspaceFactory(), Role.REVIEWER, username="elsewhere")
    for _ in range(4):
        job = make_draft(workspace=workspace, submitter=submitter)
        hooks.emit_after_commit(list(job.events.order_by("pk")))
        hooks.emit_after_commit(list(job.events.order_by("pk")))  # a repeated call adds nothing

    unread = Notification.objects.filter(read_at=None, topic=Topic.NEEDS_REVIEW)
    assert [(n.user, n.title) for n in unread] == [
        (reviewer, f"4 drafts waiting for review in {workspace.name}")
    ]
    client.force_login(reviewer)
    assert client.get(reverse("notification-unread")).json() == {"unread": 1}
    response = client.get(reverse("notification-open", args=[unread.get().pk]))
    assert response.url == reverse("review:queue")
    assert client.get(reverse("notification-unread")).json() == {"unread": 0}


def test_a_digest_counts_the_drafts_still_waiting_and_is_read_once_none_are(
    workspace, submitter, tasks_run_inline
):
    """Reviewers decide drafts: the unread digest says how many wait now, never a count of work
    that is gone, and leaves the bell when the queue is empty."""
    rita = member_of(workspace, Role.REVIEWER, username="rita")
    drafts = []
    for _ in range(3):
        drafts.append(make_draft(workspace=workspace, submitter=submitter))
        hooks.emit_after_commit(list(drafts[-1].events.order_by("pk")))

    def digest():
        return Notification.objects.filter(user=rita, topic=Topic.NEEDS_REVIEW, read_at=None)

    def decide(job, decision, **reason):
        before = set(job.events.values_list("pk", flat=True))
        review.claim_draft(job=job, reviewer=rita)
        decision(job=job, reviewer=rita, **reason)
        hooks.emit_after_commit(list(job.events.exclude(pk__in=before).order_by("pk")))

    decide(drafts[0], review.approve_draft)
    assert [n.title for n in digest()] == [f"2 drafts waiting for review in {workspace.name}"]
    decide(drafts[1], review.reject_draft, reason="Off topic.")
    assert [n.title for n in digest()] == [f"1 draft waiting for review in {workspace.name}"]
    decide(drafts[2], review.approve_draft)
    assert not digest().exists()
