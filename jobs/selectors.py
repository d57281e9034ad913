"""Reads of jobs that more than one caller needs. All of them start from workspace scope."""

from django.db.models import Q

from accounts.models import Role
from accounts.selectors import workspace_id_list, workspace_ids_for

from .models import Artifact, Job, ReviewState, Status

REJECTED = ReviewState.REJECTED.value


def jobs_in_workspaces_of(user):
    """Every job in the workspaces ``user`` belongs to: the one scope all job reads start from."""
    return Job.objects.filter(workspace_id__in=workspace_ids_for(user))


def jobs_visible_to(user):
    """Jobs a user may open as a submitter: their own, plus all jobs of workspaces they admin.
    A member who administers nothing gets ``workspace IN (…) AND submitter = …``, which the
    ``job_my_jobs`` index answers newest first without reading their other jobs."""
    own = Q(workspace_id__in=workspace_id_list(user), submitter=user)
    administered = workspace_id_list(user, roles=[Role.ADMIN])
    if administered:
        own |= Q(workspace_id__in=administered)
    return Job.objects.filter(own)


def job_for(user, job_id):
    """One visible job or ``Job.DoesNotExist`` (callers answer 404 for other workspaces)."""
    return jobs_visible_to(user).select_related("workspace", "submitter").get(pk=job_id)


def job_list_for(user, *, status="", job_type="", search="", archived=False, created_after=None):
    """Visible jobs, newest first, filtered: the "my jobs" page and ``GET /api/v1/jobs``.
    ``archived``: False (the default) leaves archived jobs out, True lists only them, None
    lists both. ``search`` matches the input summary, or a job id's leading hex digits.
    ``status`` is a status, or ``"rejected"``: the failed jobs whose draft a reviewer
    rejected, which the pages label as such (``Job.status_label``; ``failed`` includes them)."""
    jobs = jobs_visible_to(user).select_related("workspace", "submitter")
    if archived is not None:
        jobs = jobs.filter(is_archived=archived)
    if status == REJECTED:
        jobs = jobs.filter(status=Status.FAILED, review_state=ReviewState.REJECTED)
    elif status:
        jobs = jobs.filter(status=status)
    if job_type:
        jobs = jobs.filter(job_type=job_type)
    if created_after is not None:
        jobs = jobs.filter(created_at__gt=created_after)
    search = (search or "").strip()
    if search:
        matches = Q(input_summary__icontains=search)
        compact = search.replace("-", "").lower()
        if 4 <= len(compact) <= 32 and all(c in "0123456789abcdef" for c in compact):
            matches |= Q(id__startswith=search.lower())
        jobs = jobs.filter(matches)
    return jobs.order_by("-created_at")


def timeline_events(job):
    """A job's events in order, as the job page shows them (with the acting user)."""
    return job.events.select_related("actor").order_by("id")


def output_versions(job):
    """The job's text outputs that may be shown (stale results never are), newest first."""
    return (
        job.artifacts.filter(kind__in=["text", "partial"], is_stale=False)
        .select_related("created_by")
        .order_by("kind", "-version")
    )


def released_output(job):
    """The job's current output as its submitter may see it: the latest non-stale text
    artifact, but only once the job is completed. A draft waiting for review (or one that was
    rejected) is not released, so nothing unreviewed reaches a user first."""
    if job.status != Status.COMPLETED:
        return None
    return latest_text(job)


def latest_text(job):
    """The newest non-stale text version (a reviewer's edit is newer than the model's draft)."""
    return (
        job.artifacts.filter(kind=Artifact.Kind.TEXT, is_stale=False).order_by("-version").first()
    )


def job_events_after(job, after, *, limit):
    """One page of a job's timeline: events with id > ``after``, oldest first, ``limit`` + 1
    rows so the caller can tell whether more follow."""
    return list(job.events.filter(id__gt=after).order_by("id")[: limit + 1])


def evidence_of(job):
    """The latest evidence a job's answer rests on, for its pages: ``{"sources": [{"title",
    "url", "href", "supports"}], "searches": [...]}`` (``href`` only for http(s) addresses: a
    model-given address is never a link of another scheme), or None."""
    artifact = (
        job.artifacts.filter(kind=Artifact.Kind.EVIDENCE, is_stale=False)
        .exclude(data=None)
        .order_by("-version")
        .first()
    )
    if artifact is None:
        return None
    data = artifact.data or {}
    sources = []
    for source in data.get("sources", []):
        url = str(source.get("url", ""))
        sources.append(
            {
                "title": source.get("title") or url,
                "url": url,
                "href": url if url.lower().startswith(("https://", "http://")) else "",
                "supports": source.get("supports", ""),
            }
        )
    return {"sources": sources, "searches": [str(q) for q in data.get("searches", [])]}
