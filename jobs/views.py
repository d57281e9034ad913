"""Submitter pages: translate a request into one service call (or one selector) and render it."""

import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse

from accounts.selectors import workspaces_for

from . import execution, explain, hooks, services
from .errors import InvalidJobInput, JobError, UnknownJobType
from .event_stream import resume_point, sse_response
from .forms import JobInputForm, new_submit_token
from .job_types import all_job_types, get_job_type
from .job_types.registry import RETAINING_LANES
from .models import ACTIVE, RETRYABLE_FROM, TERMINAL, Job, Status
from .selectors import (
    REJECTED,
    evidence_of,
    job_for,
    job_list_for,
    output_versions,
    timeline_events,
)

PAGE_SIZE = 20


def _visible_job(user, job_id):
    try:
        return job_for(user, job_id)
    except Job.DoesNotExist:
        raise Http404("No such job") from None


def _job_types_for(workspaces):
    """Job types at least one of the user's workspaces may run (zero retention rules out some)."""
    if not workspaces:
        return []
    strict = all(ws.zero_data_retention for ws in workspaces)
    return [jt for jt in all_job_types() if not (strict and jt.lane in RETAINING_LANES)]


@login_required
def home(request):
    """My jobs: own jobs (a workspace admin sees the workspace's), filtered and paginated."""
    status = request.GET.get("status", "")
    status = status if status in Status.values or status == REJECTED else ""
    job_type = request.GET.get("type", "")
    search = request.GET.get("q", "")[:100]
    show_archived = request.GET.get("archived") == "1"
    jobs = job_list_for(
        request.user,
        status=status,
        job_type=job_type,
        search=search,
        archived=None if show_archived else False,
    )
    page = Paginator(jobs, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "page": page,
        "jobs": page.object_list,
        "statuses": [*Status.choices, (REJECTED, "Rejected")],
        "job_types": all_job_types(),
        "filters": {"status": status, "type": job_type, "q": search, "archived": show_archived},
        "is_filtered": bool(status or job_type or search),
        "query": query.urlencode(),
    }
    return render(request, "jobs/home.html", context)


@login_required
def new_job(request):
    """The job types the user's workspace offers, each leading to its form."""
    workspaces = list(workspaces_for(request.user))
    return render(
        request,
        "jobs/new.html",
        {"job_types": _job_types_for(workspaces), "has_workspace": bool(workspaces)},
    )


@login_required
def submit(request, job_type):
    """The generated form for one job type. The job page opens as soon as the job is recorded."""
    try:
        spec = get_job_type(job_type)
    except UnknownJobType:
        raise Http404("No such job type") from None
    workspaces = list(workspaces_for(request.user))
    if not workspaces:
        messages.error(request, "You are not a member of any workspace yet; ask an admin.")
        return redirect("home")
    if request.method == "POST":
        form = JobInputForm(request.POST, job_type=spec, workspaces=workspaces)
        if form.is_valid():
            try:
                # sync-lane work runs here, inside the request; other lanes are queued
                job = execution.submit_and_start(
                    workspace=form.workspace,
                    submitter=request.user,
                    job_type=spec.name,
                    input=form.job_input,
                    priority=form.priority,
                    # The form's one-time token makes a double click or a resubmit one job.
                    idempotency_key=form.idempotency_key,
                )
            except InvalidJobInput as error:
                for name, errs in error.errors.items():
                    form.add_error(name if name in form.fields else None, errs)
            except services.IdempotencyKeyReused:
                form.refresh_token()
                form.add_error(
                    None,
                    "This form was already used to start a job. Check the details and submit "
                    "again to start a new one.",
                )
            except JobError as error:
                form.add_error(None, error.message)
            else:
                if spec.lane == "sync" and job.status in (Status.QUEUED, Status.RUNNING):
                    messages.info(request, _sync_fallback_notice(job))
                return redirect("job-detail", job_id=job.pk)
    else:
        initial = {"submit_token": new_submit_token()}
        initial.update(_copied_input(request, spec))
        form = JobInputForm(job_type=spec, workspaces=workspaces, initial=initial)
    busy = (
        f"Waiting for the answer (up to {settings.SYNC_LANE_TIMEOUT:g} s)…"
        if spec.lane == "sync"
        else "Submitting…"
    )
    return render(request, "jobs/submit.html", {"form": form, "job_type": spec, "busy_label": busy})


def _sync_fallback_notice(job):
    """What the person is told when a quick job did not answer inside their request."""
    if job.events.filter(kind="lane_changed").exists():  # the request's attempt timed out
        return (
            f"The model did not answer within {settings.SYNC_LANE_TIMEOUT:g} s, so the job "
            "continues in the background. This page updates by itself when it finishes."
        )
    # Not started in the request (dispatch paused, the provider's breaker open, or a worker
    # took it first): it runs from the queue like any background job.
    return (
        "Steward could not run this job while you waited, so it runs in the background. "
        "This page updates by itself when it finishes."
    )


def _copied_input(request, spec):
    """``?from=<job id>`` starts the form from an earlier job's input (to correct and resend)."""
    try:
        job = job_for(request.user, uuid.UUID(request.GET.get("from", "")))
    except (ValueError, Job.DoesNotExist):
        return {}
    if job.job_type != spec.name:
        return {}
    names = {f.name for f in spec.fields}
    return {name: value for name, value in job.input.items() if name in names}


def _partial_text(events):
    return "".join(
        str(e.data.get("text", "")) for e in events if e.kind == "partial_output" and e.data
    )


@login_required
def job_detail(request, job_id):
    job = _visible_job(request.user, job_id)
    events = list(timeline_events(job))
    versions = list(output_versions(job))
    finals = [a for a in versions if a.kind == "text"]
    partial_artifact = next((a for a in versions if a.kind == "partial"), None)
    # a draft its submitter may not read yet stays out of the page, not only out of sight
    partial_text = "" if explain.draft_withheld(job) else _partial_text(events)
    context = {
        "job": job,
        "job_type": _safe_job_type(job.job_type),
        "status_line": explain.status_line(job, events),
        "explanation": explain.explain(job),
        "markers": _markers_for(job, events),
        "timeline": [e for e in events if e.kind not in explain.HIDDEN_EVENTS],
        "last_event_id": events[-1].pk if events else 0,
        "partial_text": partial_text,
        "show_partial": _shows_partial(job, partial_text, partial_artifact),
        "partial_is_draft": hooks.always_reviewed(job.authority_class),
        "partial_artifact": partial_artifact,
        "final": finals[0] if finals and job.status == Status.COMPLETED else None,
        "rejected_draft": finals[0] if finals and job.failure_kind == "review" else None,
        "submitted": _submitted_input(job, request.user),
        "effect_done": _effect_done(job, events),
        "draft_in_review": _draft_in_review(job, finals),
        "earlier": finals[1:] if job.status == Status.COMPLETED else [],
        "attempts": [
            (a, explain.attempt_outcome(a, job), explain.is_late_result(a))
            for a in job.attempts.all()
        ],
        "tool_steps": explain.tool_steps(job),
        "waiting_for_call": explain.waiting_call(job) is not None,
        # sources are shown with the answer they support: once it is released
        "evidence": evidence_of(job) if job.status == Status.COMPLETED else None,
        "controls": [ACTIONS[name] for name in services.allowed_controls(job)],
        "live_config": {
            "eventsUrl": reverse("job-events", args=[job.pk]),
            "lastEventId": events[-1].pk if events else 0,
            "markerRules": explain.marker_rules(),
            "eventLabels": explain.EVENT_LABELS,
            "hiddenKinds": sorted(explain.HIDDEN_EVENTS),
            "statusLabels": dict(Status.choices),
            "isTerminal": job.status in TERMINAL,
            "withholdsDraft": explain.draft_withheld(job),
        },
    }
    if "X-Steward-Refresh" not in request.headers:  # a person opened it: its notices are read
        hooks.emit_job_viewed(request.user, job)
    return render(request, "jobs/detail.html", context)


def _shows_partial(job, partial_text, partial_artifact):
    """The streamed answer is shown while the job runs, and after a stop if nothing better
    (a kept partial artifact) replaced it. A draft in review or a rejected one is shown as
    what it is instead, never as an answer still being written."""
    if job.status in ACTIVE:
        return (bool(partial_text) or job.lane == "stream") and not explain.draft_withheld(job)
    if job.status == Status.FAILED and job.failure_kind == "review":
        return False
    return bool(partial_text) and job.status in RETRYABLE_FROM and partial_artifact is None


def _submitted_input(job, viewer):
    """What was submitted, field by field, as the job page shows it: nothing once retention
    removed it, and input its submitter marked sensitive only to the submitter."""
    spec = _safe_job_type(job.job_type)
    if spec is None or job.input_purged_at:
        return {"fields": [], "purged": bool(job.input_purged_at), "withheld": False}
    if job.is_sensitive and job.submitter_id != viewer.pk:
        return {"fields": [], "purged": False, "withheld": True}
    fields = [(f.label, job.input.get(f.name, "")) for f in spec.fields if f.name in job.input]
    return {"fields": fields, "purged": False, "withheld": False}


def _effect_done(job, events):
    """For an external effect that ran: what it did, and the result its action reported."""
    released = next((e for e in events if e.kind == "released"), None)
    spec = _safe_job_type(job.job_type)
    if released is None or spec is None:
        return None
    summary = spec.describe_effect(job.input) if job.input else spec.title
    result = (released.data or {}).get("result")
    details = (
        [(name.replace("_", " ").capitalize(), value) for name, value in result.items()]
        if isinstance(result, dict)
        else []
    )
    return {"summary": summary, "details": details, "at": released}


def _draft_in_review(job, finals):
    """The draft a reviewer is checking, if the job type lets its submitter read it meanwhile."""
    spec = _safe_job_type(job.job_type)
    if job.status != Status.NEEDS_REVIEW or not finals or spec is None:
        return None
    return finals[0] if spec.submitter_sees_draft_in_review else None


def _safe_job_type(name):
    try:
        return get_job_type(name)
    except UnknownJobType:
        return None


def _markers_for(job, events):
    markers = explain.progress_markers(job, events)
    # A job that never needs review skips that marker instead of showing it as pending.
    reviewed = job.review_state not in ("", "not_required", "not_sampled")
    return [
        m
        for m in markers
        if m.key != "review" or m.reached or reviewed or hooks.always_reviewed(job.authority_class)
    ]


@login_required
def job_events(request, job_id):
    """The live view's Server-Sent Events. Serve from uvicorn (ASGI): the stream waits async."""
    job = _visible_job(request.user, job_id)
    return sse_response(job.pk, resume_point(request), withhold_draft=explain.draft_withheld(job))


class Action:
    def __init__(self, name, service, label, question, consequence, done, danger=False):
        self.name = name
        self.service = service
        self.label = label
        self.question = question
        self.consequence = consequence
        self.done = done
        self.danger = danger


ACTIONS = {
    "cancel": Action(
        "cancel",
        services.cancel_job,
        "Cancel job",
        "Cancel this job?",
        "Steward stops the work. Anything produced so far is kept, but you won't get a result.",
        "The job was canceled.",
        danger=True,
    ),
    "retry": Action(
        "retry",
        services.retry_job,
        "Retry",
        "Retry this job?",
        "It goes back in the queue and runs again as a new attempt with the same input.",
        "The job is queued again.",
    ),
    "archive": Action(
        "archive",
        services.archive_job,
        "Archive",
        "Archive this job?",
        "It disappears from your job list (you can still show archived jobs). Nothing is deleted.",
        "The job was archived.",
    ),
}


@login_required
def job_action(request, job_id, action):
    """GET asks for confirmation (the page's dialog does this without a round trip); POST acts.
    An action the job's status does not allow answers with the service's reason."""
    if action not in ACTIONS:
        raise Http404("No such action")
    spec = ACTIONS[action]
    job = _visible_job(request.user, job_id)
    if request.method != "POST":
        return render(request, "jobs/confirm.html", {"job": job, "action": spec})
    try:
        spec.service(job=job, actor=request.user)
    except JobError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, spec.done)
    return redirect("job-detail", job_id=job.pk)
