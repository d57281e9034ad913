"""The ops dashboard for workspace admins: numbers, charts, CSV exports and a few controls.
Everyone else gets a 404 (the page does not exist for them)."""

import csv

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from jobs.models import DispatchPause, FailureKind

from . import selectors, services
from .charts import chart_for
from .templatetags.ops_tags import cell_text

DISPATCH_ACTIONS = ("pause", "drain", "resume")
FAILURES_PER_PAGE = 50


class BadChoice(Exception):
    pass


def _window(value):
    key = value or "24h"
    if key not in selectors.WINDOWS:
        raise BadChoice(f"Unknown window “{key}”: choose 24h, 7d or 30d.")
    return key


def _scope(request, source):
    """The admin's workspaces, narrowed to the one chosen (404 for any other)."""
    workspaces = selectors.admin_workspaces(request.user)
    if not workspaces:
        raise Http404("No ops dashboard for you")
    chosen = source.get("workspace", "")
    if chosen:
        workspaces = [w for w in workspaces if str(w.pk) == chosen]
        if not workspaces:
            raise Http404("No such workspace")
    return workspaces


def _query(workspace="", window="24h"):
    return urlencode({k: v for k, v in {"workspace": workspace, "window": window}.items() if v})


@require_GET
@login_required
def dashboard(request):
    scope = _scope(request, request.GET)
    try:
        window = _window(request.GET.get("window"))
    except BadChoice as error:
        return HttpResponseBadRequest(str(error))
    ids = [w.pk for w in scope]
    now = timezone.now()
    since = now - selectors.WINDOWS[window]
    reads = selectors.Reads(ids, since=since, now=now)
    panels = [selectors.build_panel(key, reads) for key in selectors.PANELS]
    for panel in panels:
        panel.svg = chart_for(panel)
    chosen = request.GET.get("workspace", "")
    return render(
        request,
        "ops/dashboard.html",
        {
            "panels": panels,
            "window": window,
            "windows": list(selectors.WINDOWS),
            "workspaces": selectors.admin_workspaces(request.user),
            "scope": scope,
            "chosen": chosen,
            "query": _query(chosen, window),
            "pauses": selectors.dispatch_pauses(ids, reads.census),
            "actions": selectors.recent_actions(ids),
            "failure_kinds": FailureKind.choices,
        },
    )


@require_GET
@login_required
def export_csv(request, panel):
    scope = _scope(request, request.GET)
    if panel not in selectors.PANELS:
        raise Http404("No such panel")
    try:
        window = _window(request.GET.get("window"))
    except BadChoice as error:
        return HttpResponseBadRequest(str(error))
    now = timezone.now()
    reads = selectors.Reads([w.pk for w in scope], since=now - selectors.WINDOWS[window], now=now)
    data = selectors.build_panel(panel, reads)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="steward-{panel}-{window}.csv"'
    writer = csv.writer(response)
    writer.writerow(data.columns)
    for row in data.rows:
        writer.writerow([cell_text(value) for value in row])
    return response


@require_GET
@login_required
def failures(request, kind):
    scope = _scope(request, request.GET)
    if kind not in FailureKind.values and kind != "unknown":
        raise Http404("No such failure kind")
    try:
        window = _window(request.GET.get("window"))
    except BadChoice as error:
        return HttpResponseBadRequest(str(error))
    since = timezone.now() - selectors.WINDOWS[window]
    number = _page_number(request.GET.get("page"))
    start = (number - 1) * FAILURES_PER_PAGE
    # One row past the page says whether a next page exists, without counting them all.
    jobs = list(
        selectors.failed_jobs([w.pk for w in scope], kind=kind, since=since)[
            start : start + FAILURES_PER_PAGE + 1
        ]
    )
    return render(
        request,
        "ops/failures.html",
        {
            "kind": kind,
            "window": window,
            "jobs": jobs[:FAILURES_PER_PAGE],
            "page": number,
            "previous_page": number - 1 if number > 1 else None,
            "next_page": number + 1 if len(jobs) > FAILURES_PER_PAGE else None,
            "query": _query(request.GET.get("workspace", ""), window),
        },
    )


def _page_number(value):
    try:
        return max(int(value or 1), 1)
    except ValueError:
        return 1


def _back(request):
    return redirect(
        f"{reverse('ops:dashboard')}?"
        f"{_query(request.POST.get('scope', ''), request.POST.get('window', '24h'))}"
    )


def _one_workspace(request):
    if not request.POST.get("workspace"):
        raise Http404("Choose a workspace")
    return _scope(request, request.POST)[0]


@require_POST
@login_required
def dispatch_control(request):
    workspace = _one_workspace(request)
    action = request.POST.get("action", "")
    if action not in DISPATCH_ACTIONS:
        messages.error(request, "Choose pause, drain or resume.")
        return _back(request)
    if request.POST.get("confirm") != "yes":
        messages.error(request, "Nothing changed: tick the box to confirm.")
        return _back(request)
    if action == "resume":
        if services.resume_dispatch(workspace=workspace, actor=request.user):
            messages.success(request, f"Dispatch resumed in {workspace}.")
        else:
            messages.info(request, f"Dispatch in {workspace} was not paused.")
    else:
        mode = DispatchPause.Mode.DRAIN if action == "drain" else DispatchPause.Mode.PAUSE
        services.pause_dispatch(
            workspace=workspace,
            actor=request.user,
            mode=mode,
            reason=request.POST.get("reason", "").strip(),
        )
        messages.success(
            request,
            f"New background work in {workspace} is held; running jobs finish on their own.",
        )
    return _back(request)


@require_POST
@login_required
def retry_failures(request):
    workspace = _one_workspace(request)
    kind = request.POST.get("kind", "")
    if kind not in FailureKind.values:
        messages.error(request, "Choose a failure kind to retry.")
        return _back(request)
    try:
        window = _window(request.POST.get("window"))
    except BadChoice as error:
        messages.error(request, str(error))
        return _back(request)
    if request.POST.get("confirm") != "yes":
        messages.error(request, "Nothing was retried: tick the box to confirm.")
        return _back(request)
    retried, refusals, remaining = services.retry_failures(
        workspace=workspace,
        actor=request.user,
        kind=kind,
        since=timezone.now() - selectors.WINDOWS[window],
    )
    messages.success(request, f"Retried {len(retried)} {kind} failures in {workspace}.")
    for job_id, reason in refusals[:10]:
        messages.warning(request, f"Job {job_id[:8]} was not retried: {reason}")
    if len(refusals) > 10:
        messages.warning(request, f"…and {len(refusals) - 10} more were refused.")
    if remaining:
        messages.info(request, f"{remaining} more remain; retry again to continue.")
    return _back(request)
