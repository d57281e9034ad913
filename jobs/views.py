"""Submitter pages: translate a request into one service call and render the result."""

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.selectors import workspaces_for

from . import services
from .errors import InvalidJobInput, JobError, UnknownJobType
from .forms import JobInputForm
from .job_types import all_job_types, get_job_type
from .models import Job
from .selectors import job_for, jobs_visible_to


@login_required
def home(request):
    jobs = (
        jobs_visible_to(request.user)
        .filter(is_archived=False)
        .select_related("workspace", "submitter")[:25]
    )
    return render(request, "jobs/home.html", {"job_types": all_job_types(), "jobs": jobs})


@login_required
def submit(request, job_type):
    try:
        spec = get_job_type(job_type)
    except UnknownJobType:
        raise Http404("No such job type") from None
    workspace = workspaces_for(request.user).first()
    if workspace is None:
        messages.error(request, "You are not a member of any workspace yet.")
        return redirect("home")
    if request.method == "POST":
        form = JobInputForm(request.POST, job_type=spec)
        if form.is_valid():
            try:
                job = services.submit_job(
                    workspace=workspace,
                    submitter=request.user,
                    job_type=spec.name,
                    input=form.job_input,
                    # The form's one-time token makes a double click or a resubmit one job.
                    idempotency_key=f"form:{form.cleaned_data['submit_token']}"
                    if form.cleaned_data.get("submit_token")
                    else None,
                )
            except InvalidJobInput as error:
                for name, errs in error.errors.items():
                    form.add_error(name if name in form.fields else None, errs)
            except JobError as error:
                form.add_error(None, error.message)
            else:
                return redirect("job-detail", job_id=job.pk)
    else:
        form = JobInputForm(job_type=spec, initial={"submit_token": uuid.uuid4().hex})
    return render(request, "jobs/submit.html", {"form": form, "job_type": spec})


@login_required
def job_detail(request, job_id):
    try:
        job = job_for(request.user, job_id)
    except Job.DoesNotExist:
        raise Http404("No such job") from None
    context = {
        "job": job,
        "events": job.events.select_related("actor"),
        "attempts": job.attempts.all(),
        "artifacts": job.artifacts.order_by("kind", "-version"),
    }
    return render(request, "jobs/detail.html", context)


ACTIONS = {
    "cancel": (services.cancel_job, "The job was canceled."),
    "retry": (services.retry_job, "The job is queued again."),
    "archive": (services.archive_job, "The job was archived."),
}


@login_required
@require_POST
def job_action(request, job_id, action):
    if action not in ACTIONS:
        raise Http404("No such action")
    service, done_message = ACTIONS[action]
    try:
        job = job_for(request.user, job_id)
    except Job.DoesNotExist:
        raise Http404("No such job") from None
    try:
        service(job=job, actor=request.user)
    except JobError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, done_message)
    return redirect("job-detail", job_id=job.pk)
