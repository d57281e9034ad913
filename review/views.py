"""The review console: each view reads through the selectors or makes one service call.

Every job URL first looks the job up among the user's review workspaces, so a job of another
workspace (or a user who only submits) gets 404 whatever the method. Refusals from the services
re-render the page with the reviewer's text kept, the message on top and a 4xx status.
"""

import json
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.selectors import REVIEW_ROLES, workspace_id_list
from jobs import explain
from jobs.errors import JobError, ToolArgumentsInvalid
from jobs.job_types import AuthorityClass, all_job_types, get_job_type
from jobs.models import Job, Status, ToolCall
from jobs.selectors import evidence_of

from . import services
from .diffs import change_counts, side_by_side
from .errors import NotAReviewer, ReviewError
from .models import CLAIM_LEASE
from .selectors import (
    CLAIM_STATES,
    ORDERS,
    current_draft,
    draft_access,
    live_claim_on,
    may_approve,
    model_version,
    policies_by_job_type,
    review_jobs_for,
    review_queue,
    reviewable_job_for,
    text_versions,
)

PAGE_SIZE = 50


def _waited(job, now):
    return now - (job.provider_finished_at or job.created_at)


# --- queue ---------------------------------------------------------------------------------


def _queue_filters(request):
    get = request.GET
    return {
        "job_type": get.get("type") or None,
        "authority_class": get.get("class") or None,
        "claim_state": get.get("claim") if get.get("claim") in CLAIM_STATES else None,
        "order": get.get("order") if get.get("order") in ORDERS else "age",
    }


def _reviewers_only(request):
    if not workspace_id_list(request.user, roles=REVIEW_ROLES):
        raise Http404("You review no workspace")


@login_required
def queue(request):
    _reviewers_only(request)
    filters = _queue_filters(request)
    page = Paginator(review_queue(request.user, **filters), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    policies, now = policies_by_job_type(), timezone.now()
    rows = []
    for job in page.object_list:
        policy = policies[job.job_type]
        claim = job.live_claim_list[0] if job.live_claim_list else None
        waited = _waited(job, now)
        rows.append(
            {
                "job": job,
                "claim": claim,
                "is_mine": bool(claim and claim.reviewer_id == request.user.pk),
                "is_own": job.submitter_id == request.user.pk,
                "waited": waited,
                "sla": policy.review_sla if policy else None,
                "overdue": bool(policy and waited > policy.review_sla),
                "bulk_ok": job.authority_class in services.BULK_CLASSES
                and job.submitter_id != request.user.pk
                and (claim is None or claim.reviewer_id == request.user.pk),
            }
        )
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "page": page,
        "rows": rows,
        "filters": filters,
        "job_types": all_job_types(),
        "authority_classes": AuthorityClass.choices,
        "claim_states": [("unclaimed", "Unclaimed"), ("mine", "Mine"), ("others", "Others'")],
        "query": query.urlencode(),
        "overdue_count": sum(r["overdue"] for r in rows),
        "any_bulk": any(r["bulk_ok"] for r in rows),
    }
    return render(request, "review/queue.html", context)


@login_required
@require_POST
def bulk_approve(request):
    _reviewers_only(request)
    ids = request.POST.getlist("job")
    try:
        jobs = list(review_jobs_for(request.user).filter(pk__in=ids).select_related("workspace"))
    except ValidationError:  # a malformed id in the form: nothing to approve
        jobs = []
    if not jobs:
        messages.error(request, "Select at least one low-risk item to approve.")
        return redirect("review:queue")
    outcomes = services.bulk_approve(jobs=jobs, reviewer=request.user)
    approved = sum(o.approved for o in outcomes)
    if approved:
        messages.success(request, f"Approved {approved} item(s).")
    for outcome in outcomes:
        if not outcome.approved:
            messages.warning(request, f"{str(outcome.job_id)[:8]}: {outcome.message}")
    return redirect(reverse("review:queue") + _back_query(request))


def _back_query(request):
    query = request.POST.get("back", "")
    return f"?{query}" if query and query[0] != "?" else query


# --- one job -------------------------------------------------------------------------------


def review_job_view(methods):
    """Resolve ``job_id`` within the user's review workspaces first (404 otherwise), then
    check the method, so no URL tells an outsider whether a job exists."""

    def decorate(view):
        @login_required
        @wraps(view)
        def wrapper(request, job_id, *args, **kwargs):
            try:
                job = reviewable_job_for(request.user, job_id)
            except Job.DoesNotExist:
                raise Http404("No such job in your review queue") from None
            if request.method not in methods:
                return HttpResponseNotAllowed(methods)
            return view(request, job, *args, **kwargs)

        return wrapper

    return decorate


def _neighbours(user, job):
    ids = list(review_queue(user).values_list("pk", flat=True)[:500])
    if job.pk not in ids:
        return None, (ids[0] if ids else None)
    at = ids.index(job.pk)
    return (ids[at - 1] if at else None), (ids[at + 1] if at + 1 < len(ids) else None)


def _selected_version(request, versions, current):
    wanted = request.GET.get("version")
    for version in versions:
        if wanted and str(version.version) == wanted:
            return version
    return current


def _detail_context(request, job, *, error=None, posted=None):
    user, now = request.user, timezone.now()
    spec = get_job_type(job.job_type)
    policy = policies_by_job_type()[job.job_type]
    access = draft_access(user, job, policy)
    versions = text_versions(job)
    current, base = current_draft(versions), model_version(versions)
    shown = _selected_version(request, versions, current)
    diff = side_by_side(base.text, shown.text) if base and shown and base != shown else []
    claim = live_claim_on(job, now)
    previous_id, next_id = _neighbours(user, job)
    is_effect = job.authority_class == AuthorityClass.EXTERNAL_EFFECT
    waited = _waited(job, now)
    return {
        "job": job,
        "spec": spec,
        "policy": policy,
        "inputs": [(f.label, job.input.get(f.name, "")) for f in spec.fields],
        "versions": versions,
        "current": current,
        "base": base,
        "shown": shown,
        "diff": diff,
        "diff_counts": change_counts(diff),
        "evidence": evidence_of(job),
        "waiting_calls": _waiting_calls(job, access),
        "tool_steps": explain.tool_steps(job),
        "attempts": job.attempts.all(),
        "events": explain.timeline_entries(job.events.order_by("id")),
        "decisions": job.decisions.select_related("reviewer").order_by("created_at"),
        "release": getattr(job, "release_record", None) if is_effect else None,
        "claim": claim,
        "claim_is_mine": bool(claim and claim.reviewer_id == user.pk),
        "lease_minutes": int(CLAIM_LEASE.total_seconds() // 60),
        "is_open": access.is_open,
        "is_own": access.is_own,
        "can_work": access.can_work,
        "escalated_block": access.escalated_block,
        "can_approve": access.can_approve,
        "is_effect": is_effect,
        "effect_summary": spec.describe_effect(job.input) if is_effect else "",
        "waited": waited,
        "overdue": access.is_open and waited > policy.review_sla,
        "previous_id": previous_id,
        "next_id": next_id,
        "error": error,
        "posted": posted or {},
        "editor_text": (posted or {}).get("text", current.text if current else ""),
    }


def _waiting_calls(job, access):
    """The calls the job's run waits on, as the approval card shows them."""
    calls = list(job.tool_calls.filter(state=ToolCall.State.AWAITING_APPROVAL))
    if not calls:
        return []
    spec = get_job_type(job.job_type)
    shown = []
    for call in calls:
        tool = spec.tool(call.name)
        shown.append(
            {
                "call": call,
                "tool": tool,
                "sentence": tool.sentence(call.arguments) if tool else call.name,
                "arguments": json.dumps(call.arguments, indent=2, ensure_ascii=False),
                "may_approve": bool(tool) and may_approve(access.role, tool),
            }
        )
    return shown


@review_job_view(methods=("GET",))
def detail(request, job):
    return render(request, "review/detail.html", _detail_context(request, job))


def _claim(job, user, post):
    services.claim_draft(job=job, reviewer=user)
    return f"You have this draft for {int(CLAIM_LEASE.total_seconds() // 60)} minutes."


def _renew(job, user, post):
    claim = services.renew_claim(job=job, reviewer=user)
    return f"Claim renewed until {timezone.localtime(claim.expires_at):%H:%M}."


def _release(job, user, post):
    services.release_claim(job=job, reviewer=user)
    return "Claim released; the draft is back in the queue."


def _edit(job, user, post):
    version = services.edit_draft(job=job, reviewer=user, text=post.get("text", ""))
    return f"Saved as version {version.version}."


class ConfirmEffect(Exception):
    """An external effect's approval came without the approver's confirmation of the effect;
    its argument is the tool call's id when the effect is a call in the middle of a run."""


def _approve(job, user, post):
    if job.authority_class == AuthorityClass.EXTERNAL_EFFECT and post.get("confirmed") != "1":
        raise ConfirmEffect
    text = post.get("text")
    decision = services.approve_draft(job=job, reviewer=user, text=text)
    if decision.job.status == Status.COMPLETED:
        return f"Approved version {decision.artifact_version}; the submitter can see it now."
    return "Approved. The action runs once in the background; the job completes when it has."


def _approve_call(job, user, post):
    call_id = post.get("call_id", "")
    if post.get("confirmed") != "1":
        raise ConfirmEffect(call_id)
    try:
        arguments = json.loads(post["arguments"]) if post.get("arguments") else None
    except ValueError as error:
        raise ToolArgumentsInvalid(f"The arguments are not valid JSON ({error}).") from None
    call = services.approve_tool_call(job=job, reviewer=user, call_id=call_id, arguments=arguments)
    edited = " with your arguments" if call.original_arguments is not None else ""
    return f"Approved{edited}; the call runs once and the run goes on."


def _reject_call(job, user, post):
    services.reject_tool_call(
        job=job, reviewer=user, call_id=post.get("call_id", ""), reason=post.get("reason", "")
    )
    return "Rejected; the model reads your reason and the run goes on."


def _reject(job, user, post):
    services.reject_draft(job=job, reviewer=user, reason=post.get("reason", ""))
    return "Rejected; the submitter sees your reason."


def _send_back(job, user, post):
    services.send_back(job=job, reviewer=user, notes=post.get("notes", ""))
    return "Sent back; the next attempt gets your notes."


def _escalate(job, user, post):
    services.escalate(job=job, reviewer=user, note=post.get("note", ""))
    return "Escalated to an admin."


# action name → (service call, go to the next draft afterwards?)
ACTIONS = {
    "claim": (_claim, False),
    "renew": (_renew, False),
    "release": (_release, False),
    "edit": (_edit, False),
    "approve": (_approve, True),
    "reject": (_reject, True),
    "send-back": (_send_back, True),
    "escalate": (_escalate, True),
    "approve-call": (_approve_call, False),
    "reject-call": (_reject_call, False),
}


@review_job_view(methods=("POST",))
def act(request, job, action):
    call, then_next = ACTIONS[action]
    try:
        message = call(job, request.user, request.POST)
    except ConfirmEffect as ask:  # without the page's script: ask on the page itself
        context = _detail_context(request, job, posted=request.POST)
        confirming = {"confirming_call": ask.args[0]} if ask.args else {"confirming": True}
        return render(request, "review/detail.html", {**context, **confirming})
    except NotAReviewer:
        raise Http404("No such job in your review queue") from None
    except (ReviewError, JobError) as error:
        status = getattr(error, "status", 409)
        job.refresh_from_db()
        context = _detail_context(request, job, error=error.message, posted=request.POST)
        return render(request, "review/detail.html", context, status=status)
    messages.success(request, message)
    if then_next:
        _, next_id = _neighbours(request.user, job)
        if next_id:
            return redirect("review:detail", job_id=next_id)
        return redirect("review:queue")
    return redirect("review:detail", job_id=job.pk)
