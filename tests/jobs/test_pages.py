"""The submitter pages: submit, my jobs, the job page and its controls."""

import re

import pytest
from django.urls import reverse

from accounts.models import Role
from jobs import services
from jobs.models import FailureKind, Job, Status
from tests.factories import JobFactory, WorkspaceFactory, member_of
from tests.jobs import progress

pytestmark = pytest.mark.django_db

SUMMARY_INPUT = {"title": "Board minutes", "document": "We met and agreed on things."}


@pytest.fixture
def client_of(client):
    def login(user):
        client.force_login(user)
        return client

    return login


def submit_url(job_type="summarize_document"):
    return reverse("job-submit", args=[job_type])


def form_token(client, job_type="summarize_document"):
    html = client.get(submit_url(job_type)).content.decode()
    return re.search(r'name="submit_token" value="([0-9a-f]+)"', html).group(1)


# --- submit ---------------------------------------------------------------------------------


def test_job_type_page_lists_every_job_type(client_of, submitter):
    html = client_of(submitter).get(reverse("job-new")).content.decode()
    for title in ("Summarize a document", "Draft a support reply", "Tag a ticket"):
        assert title in html
    assert reverse("job-submit", args=["issue_refund"]) in html


def test_form_has_a_label_for_every_field(client_of, submitter):
    html = client_of(submitter).get(submit_url()).content.decode()
    for name in ("title", "document", "sensitive", "priority"):
        assert f'for="id_{name}"' in html
    assert 'aria-describedby="id_document_helptext"' in html


def test_validation_error_is_shown_next_to_its_field(client_of, submitter):
    client = client_of(submitter)
    response = client.post(
        submit_url("issue_refund"),
        {
            "submit_token": "a" * 32,
            "order_reference": "A-1",
            "customer_email": "not-an-email",
            "amount": "twelve",
            "reason": "Broken on arrival",
        },
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(
        r'<input[^>]*aria-describedby="id_amount_error"[^>]*aria-invalid="true"[^>]*name="amount"'
        r"|<input[^>]*name=\"amount\"[^>]*aria-describedby=\"id_amount_error\"",
        html,
    ) or ('aria-describedby="id_amount_error"' in html and 'aria-invalid="true"' in html)
    assert '<p class="field-error" id="id_amount_error" role="alert">Enter a number' in html
    assert 'id="id_customer_email_error" role="alert">Enter an email address.' in html
    assert Job.objects.count() == 0


def test_submit_opens_the_job_page_before_any_model_work(client_of, submitter):
    client = client_of(submitter)
    token = form_token(client)
    response = client.post(submit_url(), {**SUMMARY_INPUT, "submit_token": token})
    job = Job.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("job-detail", args=[job.pk])
    assert job.status == Status.QUEUED
    assert job.idempotency_key == f"form:{token}"
    page = client.get(response["Location"]).content.decode()
    assert str(job.pk) in page
    assert "Accepted and waiting for its turn." in page


def test_resubmitting_the_same_form_creates_one_job(client_of, submitter):
    client = client_of(submitter)
    token = form_token(client)
    first = client.post(submit_url(), {**SUMMARY_INPUT, "submit_token": token})
    second = client.post(submit_url(), {**SUMMARY_INPUT, "submit_token": token})
    assert Job.objects.count() == 1
    assert first["Location"] == second["Location"]


def test_reused_form_with_changed_input_asks_to_submit_again(client_of, submitter):
    client = client_of(submitter)
    token = form_token(client)
    client.post(submit_url(), {**SUMMARY_INPUT, "submit_token": token})
    response = client.post(
        submit_url(), {**SUMMARY_INPUT, "title": "Another", "submit_token": token}
    )
    html = response.content.decode()
    assert "This form was already used to start a job" in html
    new_token = re.search(r'name="submit_token" value="([0-9a-f]+)"', html).group(1)
    assert new_token != token
    client.post(submit_url(), {**SUMMARY_INPUT, "title": "Another", "submit_token": new_token})
    assert Job.objects.count() == 2


def test_form_can_start_from_an_earlier_jobs_input(client_of, submitter, workspace):
    job = JobFactory(workspace=workspace, submitter=submitter, status=Status.FAILED)
    html = client_of(submitter).get(submit_url() + f"?from={job.pk}").content.decode()
    assert 'value="Quarterly report"' in html


# --- who sees what -------------------------------------------------------------------------


def test_member_cannot_open_another_members_job(client_of, workspace):
    job = JobFactory(workspace=workspace)
    other = member_of(workspace)
    client = client_of(other)
    assert client.get(reverse("job-detail", args=[job.pk])).status_code == 404
    assert client.get(reverse("job-events", args=[job.pk])).status_code == 404
    assert client.post(reverse("job-action", args=[job.pk, "cancel"])).status_code == 404
    job.refresh_from_db()
    assert job.status == Status.QUEUED


def test_workspace_admin_can_open_members_jobs(client_of, workspace):
    job = JobFactory(workspace=workspace)
    admin = member_of(workspace, role=Role.ADMIN)
    assert client_of(admin).get(reverse("job-detail", args=[job.pk])).status_code == 200


def test_nobody_opens_another_workspaces_job(client_of, workspace):
    job = JobFactory(workspace=WorkspaceFactory())
    admin = member_of(workspace, role=Role.ADMIN)
    assert client_of(admin).get(reverse("job-detail", args=[job.pk])).status_code == 404


def test_pages_need_login(client, workspace):
    job = JobFactory(workspace=workspace)
    for url in (reverse("home"), reverse("job-detail", args=[job.pk]), submit_url()):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


# --- my jobs -------------------------------------------------------------------------------


def test_my_jobs_shows_own_jobs_only(client_of, workspace, submitter):
    mine = JobFactory(workspace=workspace, submitter=submitter, input_summary="Mine")
    JobFactory(workspace=workspace, input_summary="Theirs")
    html = client_of(submitter).get(reverse("home")).content.decode()
    assert "Mine" in html and "Theirs" not in html
    assert f'class="badge badge-{mine.status}"' in html


def test_my_jobs_filters_by_status_type_and_search(client_of, workspace, submitter):
    JobFactory(workspace=workspace, submitter=submitter, input_summary="Alpha report")
    JobFactory(workspace=workspace, submitter=submitter, input_summary="Beta", status=Status.FAILED)
    JobFactory(
        workspace=workspace,
        submitter=submitter,
        input_summary="Gamma ticket",
        job_type="tag_ticket",
    )
    client = client_of(submitter)

    def listed(**params):
        html = client.get(reverse("home"), params).content.decode()
        return {n for n in ("Alpha report", "Beta", "Gamma ticket") if n in html}

    assert listed() == {"Alpha report", "Beta", "Gamma ticket"}
    assert listed(status="failed") == {"Beta"}
    assert listed(type="tag_ticket") == {"Gamma ticket"}
    assert listed(q="alpha") == {"Alpha report"}
    assert listed(status="nonsense") == {"Alpha report", "Beta", "Gamma ticket"}


def test_my_jobs_finds_a_job_by_its_id_prefix(client_of, workspace, submitter):
    job = JobFactory(workspace=workspace, submitter=submitter, input_summary="Needle")
    JobFactory(workspace=workspace, submitter=submitter, input_summary="Haystack")
    html = client_of(submitter).get(reverse("home"), {"q": job.short_id}).content.decode()
    assert "Needle" in html and "Haystack" not in html


def test_archived_jobs_are_hidden_until_asked_for(client_of, workspace, submitter):
    job = JobFactory(
        workspace=workspace, submitter=submitter, status=Status.COMPLETED, input_summary="Old"
    )
    services.archive_job(job=job, actor=submitter)
    client = client_of(submitter)
    assert "Old" not in client.get(reverse("home")).content.decode()
    assert "Old" in client.get(reverse("home"), {"archived": "1"}).content.decode()


def test_my_jobs_paginates(client_of, workspace, submitter):
    JobFactory.create_batch(25, workspace=workspace, submitter=submitter)
    html = client_of(submitter).get(reverse("home")).content.decode()
    assert "Page 1 of 2" in html
    assert html.count('class="job-link"') == 20


def test_my_jobs_query_count_does_not_grow_with_jobs(
    client_of, workspace, django_assert_num_queries
):
    admin = member_of(workspace, role=Role.ADMIN)
    client = client_of(admin)
    JobFactory.create_batch(2, workspace=workspace)
    # session, user, roles (header), unread count (header), visible-job count, one page of jobs
    with django_assert_num_queries(6):
        client.get(reverse("home"))
    JobFactory.create_batch(15, workspace=workspace)
    with django_assert_num_queries(6):
        response = client.get(reverse("home"), {"status": "queued", "q": "report"})
    assert response.content.decode().count('class="job-link"') == 17


# --- the job page --------------------------------------------------------------------------


def test_job_page_shows_progress_timeline_and_attempts(client_of, workspace, submitter):
    job = JobFactory(workspace=workspace, submitter=submitter)
    attempt = progress.start(job)
    progress.finish(job, attempt, text="# Summary\n\n- one\n- two")
    html = client_of(submitter).get(reverse("job-detail", args=[job.pk])).content.decode()
    assert 'data-marker="released"' in html
    assert html.count('class="step is-done"') == 4  # queued, started, working, released
    assert "Model working" in html and "Completed" in html
    assert "<h1>Summary</h1>" in html and "<li>one</li>" in html
    assert "$0.00042" in html
    assert "resp_" not in html and "in_progress" not in html


def test_model_output_is_sanitised(client_of, workspace, submitter):
    job = JobFactory(workspace=workspace, submitter=submitter)
    attempt = progress.start(job)
    progress.finish(
        job,
        attempt,
        text='Hi <script>alert(1)</script> [x](javascript:alert(1)) <img src=x onerror="y">',
    )
    html = client_of(submitter).get(reverse("job-detail", args=[job.pk])).content.decode()
    output = html.split('id="final-output"')[1].split("</div>")[0]
    assert "<script" not in output and "javascript:" not in output
    assert re.search(r"<[^>]*onerror", output) is None  # no tag carries the handler
    assert "&lt;script&gt;" in output  # raw HTML is shown as inert text


def test_reviewer_edit_shows_earlier_versions(client_of, workspace, submitter):
    job = JobFactory(workspace=workspace, submitter=submitter)
    attempt = progress.start(job)
    progress.finish(job, attempt, text="First draft")
    reviewer = member_of(workspace, role=Role.REVIEWER)
    services.add_artifact(job=job, kind="text", text="Edited draft", actor=reviewer)
    html = client_of(submitter).get(reverse("job-detail", args=[job.pk])).content.decode()
    final = html.split('id="final-output"')[1].split("</div>")[0]
    assert "Edited draft" in final
    assert "Earlier versions (1)" in html and "First draft" in html


def test_failure_is_explained_in_plain_words(client_of, workspace, submitter):
    job = JobFactory(workspace=workspace, submitter=submitter)
    services.fail_job(
        job=job,
        actor="system:poller",
        kind=FailureKind.INPUT,
        reason="The document is empty.",
        needs_human=True,
    )
    html = client_of(submitter).get(reverse("job-detail", args=[job.pk])).content.decode()
    assert "Steward could not use the input as given." in html
    assert "Retrying the same input won&#x27;t help." in html
    assert "No partial answer was produced." in html
    assert "A person needs to look at this" in html
    assert f"?from={job.pk}" in html  # the next step: correct the input


def test_retryable_failure_offers_retry(client_of, workspace, submitter):
    job = JobFactory(workspace=workspace, submitter=submitter)
    attempt = progress.start(job)
    job.refresh_from_db()
    job.attempt_limit = 1  # no automatic retry left
    Job.objects.filter(pk=job.pk).update(attempt_limit=1)
    progress.fail(job, attempt, retryable=True, message="The service was busy.")
    html = client_of(submitter).get(reverse("job-detail", args=[job.pk])).content.decode()
    assert "The AI service had a problem" in html
    assert "used all 1 of its attempts" in html


def test_cancel_asks_for_confirmation_then_cancels(client_of, workspace, submitter):
    job = JobFactory(workspace=workspace, submitter=submitter, status=Status.RUNNING)
    client = client_of(submitter)
    url = reverse("job-action", args=[job.pk, "cancel"])
    confirm = client.get(url)
    assert "Cancel this job?" in confirm.content.decode()
    job.refresh_from_db()
    assert job.status == Status.RUNNING
    response = client.post(url, follow=True)
    job.refresh_from_db()
    assert job.status == Status.CANCELED
    assert "The job was canceled." in response.content.decode()


def test_illegal_action_says_why(client_of, workspace, submitter):
    job = JobFactory(workspace=workspace, submitter=submitter, status=Status.COMPLETED)
    response = client_of(submitter).post(reverse("job-action", args=[job.pk, "retry"]), follow=True)
    assert "This job is completed, so it can&#x27;t be retried." in response.content.decode()


def test_controls_follow_the_status(client_of, workspace, submitter):
    client = client_of(submitter)

    def controls(status, **fields):
        job = JobFactory(workspace=workspace, submitter=submitter, status=status, **fields)
        html = client.get(reverse("job-detail", args=[job.pk])).content.decode()
        return {a for a in ("cancel", "retry", "archive") if f'data-confirm="confirm-{a}"' in html}

    assert controls(Status.RUNNING) == {"cancel"}
    assert controls(Status.FAILED, failure_retryable=True) == {"retry", "archive"}
    # retrying bad input can't help: the page offers resubmitting, not Retry
    assert controls(Status.FAILED, failure_kind="input") == {"archive"}
    # no attempts left: Retry would only be refused
    exhausted = {"failure_retryable": True, "attempt_count": 3, "attempt_limit": 3}
    assert controls(Status.FAILED, **exhausted) == {"archive"}
    assert controls(Status.CANCELED) == {"retry", "archive"}
    assert controls(Status.COMPLETED) == {"archive"}


@pytest.mark.django_db(transaction=True)
def test_event_stream_resumes_after_the_last_event_id(client, workspace):
    """The job page's live view: a reconnect with Last-Event-ID gets only what it missed."""
    submitter = member_of(workspace)
    job = JobFactory(workspace=workspace, submitter=submitter)
    attempt = progress.start(job)
    progress.finish(job, attempt)
    ids = list(job.events.values_list("id", flat=True))
    client.force_login(submitter)
    url = reverse("job-events", args=[job.pk])
    with pytest.warns(Warning):  # the test client consumes the async stream synchronously
        body = b"".join(client.get(url, headers={"Last-Event-ID": str(ids[1])})).decode()
    sent = [int(n) for n in re.findall(r"^id: (\d+)\nevent: job_event", body, re.M)]
    assert sent == ids[2:]
    assert "event: end" in body
