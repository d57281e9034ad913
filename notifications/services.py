"""Every write of the notifications app: telling people about job events, their choices, and
outgoing webhooks (register, deliver with retries, log).

Nothing here runs inside a job's transition: ``on_job_event`` is called after the transition
committed, writes the in-app notification (one cheap insert) and hands email and webhooks to
django-q2 tasks, so a slow mail server or a dead endpoint never holds up or undoes a job.
"""

import contextlib
import operator
import random
import uuid
from datetime import timedelta
from functools import reduce

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership, Role
from accounts.selectors import REVIEW_ROLES, role_in
from jobs.errors import UnknownJobType
from jobs.explain import STATUS_SENTENCES
from jobs.job_types import get_job_type
from jobs.models import WAITING_FOR_REVIEW, Job, JobEvent, Status
from jobs.queue import enqueue

from . import webhooks
from .errors import InvalidEndpoint, NotAWorkspaceAdmin
from .models import (
    Channel,
    Notification,
    NotificationPreference,
    Topic,
    WebhookDelivery,
    WebhookEndpoint,
)
from .selectors import choices_for, wants

TITLES = {
    Topic.COMPLETED: "finished",
    Topic.FAILED: "failed",
    Topic.NEEDS_REVIEW: "is waiting for a reviewer",
    Topic.APPROVED: "was approved",
    Topic.REJECTED: "was rejected by a reviewer",
    Topic.SENT_BACK: "was sent back for another attempt",
    Topic.RELEASED: "was carried out",
    Topic.CANCELED: "was canceled",
    Topic.EXPIRED: "missed its deadline",
}


def page_url(name, *args, urlconf):
    """An absolute link to one of Steward's pages, for emails and webhook payloads.

    Reversed in the URLconf of the app that serves the page, which ``config.urls`` includes at
    its root, so the path is the same: these links are built in task workers, and loading the
    project's URLconf there would import the REST API and the admin's URLs (~12 MB a worker)
    for nothing else."""
    return settings.SITE_URL.rstrip("/") + reverse(name, args=args, urlconf=urlconf)


def job_url(job):
    return page_url("job-detail", job.pk, urlconf="jobs.urls")


def title_for(job, topic):
    """``Your job “A-1042” (Resolve a support ticket) finished``: the job type tells apart jobs
    whose summaries are the same."""
    name = job.input_summary or job.short_id
    try:
        kind = f" ({get_job_type(job.job_type).title})"
    except UnknownJobType:
        kind = ""
    return f"Your job “{name}”{kind} {TITLES.get(topic, topic.replace('_', ' '))}"


# --- job events ----------------------------------------------------------------------------


def on_job_event(event):
    """``on_job_events`` for one event."""
    on_job_events([event])


def on_job_events(events):
    """Tell each job's submitter and the workspace's webhooks about job events.

    Called after the events' transaction committed, with every event it wrote: a pump that
    finishes dozens of jobs a turn pays a fixed number of queries for the batch, plus one
    enqueue per email or webhook delivery. Idempotent: a second call for the same event creates
    no second notification or delivery. The submitter is not told about their own action (they
    just did it), but webhooks always are.
    """
    _recount_digests({event.job_id for event in events if event.from_status == Status.NEEDS_REVIEW})
    wanted = [event.pk for event in events if event.kind in Topic.values or _is_review_work(event)]
    if not wanted:
        return
    events = list(
        JobEvent.objects.select_related("job__submitter", "job__workspace")
        .filter(pk__in=wanted)
        .order_by("id")
    )
    choices = choices_for({event.job.submitter_id for event in events})
    endpoints = {}
    for endpoint in WebhookEndpoint.objects.filter(
        workspace_id__in={event.job.workspace_id for event in events}, is_active=True
    ):
        endpoints.setdefault(endpoint.workspace_id, []).append(endpoint)
    in_app, emails, deliveries = [], [], []
    for event in events:
        job, topic = event.job, event.kind
        if topic not in Topic.values:
            continue  # work for reviewers only: the digest below
        submitter = job.submitter
        if event.actor_id != submitter.pk:
            if wants(submitter, Channel.IN_APP, topic, choices):
                in_app.append(_in_app(submitter, event, topic))
            if submitter.email and wants(submitter, Channel.EMAIL, topic, choices):
                emails.append((event.pk, submitter.pk))
        deliveries += [
            (endpoint, event, topic)
            for endpoint in endpoints.get(job.workspace_id, [])
            if endpoint.wants(topic)
        ]
    _supersede(in_app)
    in_app += _review_digests([event for event in events if _is_review_work(event)])
    Notification.objects.bulk_create(in_app, ignore_conflicts=True)  # already told: skipped
    for event_id, user_id in emails:
        enqueue("notifications.tasks.send_job_email", event_id, user_id)
    for endpoint, event, topic in deliveries:
        delivery = _delivery_for_event(endpoint, event, topic)
        if delivery is not None:
            enqueue("notifications.tasks.deliver_webhook", delivery.pk)


def _supersede(notices):
    """One unread notice per person and job: a new one replaces (marks read) the older ones,
    so the count is the jobs that have news, not the events they went through."""
    jobs_by_user = {}
    for notice in notices:
        jobs_by_user.setdefault(notice.user_id, set()).add(notice.job_id)
    now = timezone.now()
    replayed = [notice.event_id for notice in notices]  # a repeated call changes nothing
    if jobs_by_user:  # one statement however many jobs and people the events concern
        earlier = reduce(
            operator.or_,
            (Q(user_id=user_id, job_id__in=job_ids) for user_id, job_ids in jobs_by_user.items()),
        )
        Notification.objects.filter(earlier, read_at=None).exclude(event_id__in=replayed).update(
            read_at=now
        )
    latest = {}
    for notice in notices:  # within a batch too: the latest event per job stays unread
        earlier = latest.get((notice.user_id, notice.job_id))
        if earlier is not None:
            earlier.read_at = now
        latest[(notice.user_id, notice.job_id)] = notice


def _is_review_work(event):
    """A draft reached the review queue, or a tool run paused there for a person to approve a
    step: either is work the workspace's reviewers hear of in their digest."""
    return event.kind in (Topic.NEEDS_REVIEW, "approval_needed")


def _review_digests(events):
    """Reviewers hear of new work as one unread notice per workspace that counts the drafts
    waiting there, not one per draft: a newer digest replaces (marks read) the older one. The
    submitter of a draft is not told about it as a reviewer."""
    latest = {}
    for event in events:
        latest[event.job.workspace_id] = event
    if not latest:
        return []
    reviewers = {}
    for membership in Membership.objects.filter(
        workspace_id__in=latest, role__in=REVIEW_ROLES
    ).select_related("user"):
        reviewers.setdefault(membership.workspace_id, []).append(membership.user)
    waiting = _waiting_counts(latest)
    digests = []
    for workspace_id, event in latest.items():
        title = _digest_title(max(waiting.get(workspace_id, 0), 1), event.job.workspace.name)
        for user in reviewers.get(workspace_id, []):
            if user.pk == event.job.submitter_id:
                continue
            digests.append(
                Notification(
                    user=user,
                    job=event.job,
                    event=event,
                    topic=Topic.NEEDS_REVIEW,
                    title=title,
                    body=f"The newest is “{event.job.input_summary or event.job.short_id}”.",
                )
            )
    if digests:
        earlier = reduce(
            operator.or_,
            (
                Q(user_id=digest.user_id, job__workspace_id=digest.job.workspace_id)
                for digest in digests
            ),
        )
        Notification.objects.filter(earlier, topic=Topic.NEEDS_REVIEW, read_at=None).exclude(
            event_id__in=[digest.event_id for digest in digests]
        ).exclude(job__submitter_id=F("user_id")).update(read_at=timezone.now())
    return digests


def _waiting_counts(workspace_ids):
    """Drafts in each workspace's review queue (pending or escalated: an approved action that
    has not run yet is no longer waiting for a reviewer)."""
    return dict(
        Job.objects.filter(WAITING_FOR_REVIEW, workspace_id__in=workspace_ids)
        .values_list("workspace_id")
        .annotate(count=Count("id"))
    )


def _digest_title(count, workspace_name):
    return f"{count} draft{'s' if count != 1 else ''} waiting for review in {workspace_name}"


def _unread_digests(workspace_id):
    return Notification.objects.filter(
        topic=Topic.NEEDS_REVIEW, read_at=None, job__workspace_id=workspace_id
    ).exclude(job__submitter_id=F("user_id"))


def _recount_digests(job_ids):
    """Drafts left review (approved, rejected, sent back, canceled): each unread digest of
    their workspaces says how many wait now, and is read once none do, so the bell never counts
    work that is gone."""
    if not job_ids:
        return
    workspaces = dict(
        Job.objects.filter(pk__in=job_ids).values_list("workspace_id", "workspace__name").distinct()
    )
    waiting = _waiting_counts(workspaces)
    for workspace_id, name in workspaces.items():
        count = waiting.get(workspace_id, 0)
        if count:
            _unread_digests(workspace_id).update(title=_digest_title(count, name))
        else:
            _unread_digests(workspace_id).update(read_at=timezone.now())


def is_review_digest(notification):
    """A reviewer's notice of drafts waiting (it opens the review queue, not the job)."""
    return (
        notification.topic == Topic.NEEDS_REVIEW
        and notification.user_id != notification.job.submitter_id
    )


def mark_job_read(*, user, job):
    """The person opened the job's page: its notices are read."""
    return Notification.objects.filter(user=user, job=job, read_at=None).update(
        read_at=timezone.now()
    )


def _in_app(user, event, topic):
    return Notification(
        user=user,
        job=event.job,
        event=event,
        topic=topic,
        title=title_for(event.job, topic),
        body=event.message or STATUS_SENTENCES.get(event.to_status, ""),
    )


def send_job_email(*, event_id, user_id):
    """Email one person about one job event through Django's email backend."""
    event = JobEvent.objects.select_related("job__submitter").get(pk=event_id)
    job = event.job
    user = job.submitter if job.submitter_id == user_id else None
    if user is None or not user.email:
        return 0
    lines = [
        f"Hello {user.get_username()},",
        "",
        f"{title_for(job, event.kind)}.",
        "",
        event.message or STATUS_SENTENCES.get(event.to_status, ""),
        "",
        f"Open the job: {job_url(job)}",
        "",
        "You get this email because of your notification settings in Steward:",
        page_url("notification-settings", urlconf="notifications.urls"),
    ]
    return send_mail(
        subject=f"[Steward] {title_for(job, event.kind)}",
        message="\n".join(lines),
        from_email=None,
        recipient_list=[user.email],
    )


# --- in-app notifications and preferences --------------------------------------------------


def mark_read(*, user, notification_id):
    """Mark one of the user's notifications read; returns it (or ``None`` if not theirs)."""
    notification = Notification.objects.filter(user=user, pk=notification_id).first()
    if notification and notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
    return notification


def mark_all_read(*, user):
    return Notification.objects.filter(user=user, read_at__isnull=True).update(
        read_at=timezone.now()
    )


@transaction.atomic
def set_preferences(*, user, enabled):
    """Store the user's choice for every channel and topic; ``enabled`` is a set of
    ``(channel, topic)`` pairs that are on, everything else is off."""
    for channel in Channel.values:
        for topic in Topic.values:
            NotificationPreference.objects.update_or_create(
                user=user,
                channel=channel,
                topic=topic,
                defaults={"enabled": (channel, topic) in enabled},
            )


# --- outgoing webhooks ---------------------------------------------------------------------


def _require_admin(actor, workspace):
    if role_in(actor, workspace.pk) != Role.ADMIN:
        raise NotAWorkspaceAdmin("Only an admin of this workspace can manage its webhooks.")


def endpoint_problem(*, url, topics=()):
    """Why an endpoint with this address and these topics cannot be saved, or ``""``. The one
    rule for the webhooks page and Django admin."""
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        return "Enter a full http:// or https:// address."
    refused = webhooks.refusal(url, resolve=False)
    if refused:
        return refused
    unknown = set(topics) - set(Topic.values)
    if unknown:
        return f"Unknown events: {', '.join(sorted(unknown))}."
    return ""


def register_endpoint(*, workspace, actor, url, description="", topics=()):
    """Add an endpoint with a new signing secret (show ``endpoint.secret`` to the admin once)."""
    _require_admin(actor, workspace)
    problem = endpoint_problem(url=url, topics=topics)
    if problem:
        raise InvalidEndpoint(problem)
    return WebhookEndpoint.objects.create(
        workspace=workspace,
        url=url,
        description=description[:200],
        topics=sorted(topics),
        created_by=actor,
    )


def set_endpoint_active(*, endpoint, actor, active):
    _require_admin(actor, endpoint.workspace)
    endpoint.is_active = active
    endpoint.save(update_fields=["is_active"])
    return endpoint


def delete_endpoint(*, endpoint, actor):
    _require_admin(actor, endpoint.workspace)
    endpoint.delete()


def _payload(event_type, data, at=None):
    return {"type": event_type, "timestamp": (at or timezone.now()).isoformat(), "data": data}


def _delivery_for_event(endpoint, event, topic):
    job = event.job
    data = {
        "job_id": str(job.pk),
        "job_type": job.job_type,
        "status": event.to_status or job.status,
        "summary": job.input_summary,
        "workspace": job.workspace.slug,
        "event_id": event.pk,
        "message": event.message,
        "url": job_url(job),
    }
    try:
        with transaction.atomic():
            return WebhookDelivery.objects.create(
                endpoint=endpoint,
                event=event,
                message_id=f"msg_{event.pk}_{endpoint.pk.hex[:12]}",
                event_type=f"job.{topic}",
                payload=_payload(f"job.{topic}", data, event.created_at),
                max_attempts=settings.WEBHOOK_MAX_ATTEMPTS,
                next_attempt_at=timezone.now(),
            )
    except IntegrityError:  # this event was already queued for this endpoint
        return None


def send_test_event(*, endpoint, actor):
    """Queue a ``steward.test`` message to the endpoint; it is delivered and logged like any."""
    _require_admin(actor, endpoint.workspace)
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        message_id=f"msg_test_{uuid.uuid4().hex}",
        event_type="steward.test",
        payload=_payload(
            "steward.test",
            {"workspace": endpoint.workspace.slug, "message": "A test event from Steward."},
        ),
        max_attempts=settings.WEBHOOK_MAX_ATTEMPTS,
        next_attempt_at=timezone.now(),
    )
    transaction.on_commit(lambda: enqueue("notifications.tasks.deliver_webhook", delivery.pk))
    return delivery


def retry_delay(attempts):
    """Exponential backoff with ±20 % jitter: base, 2×base, 4×base … capped."""
    base = settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0)
    return min(base, settings.WEBHOOK_RETRY_MAX_SECONDS) * random.uniform(0.8, 1.2)


LEASE = timedelta(seconds=60)


def _claim(delivery_id):
    """Take the delivery for one attempt: only if it is due, and only one worker at a time
    (pushing ``next_attempt_at`` forward is the lease)."""
    now = timezone.now()
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id,
        state__in=[WebhookDelivery.State.PENDING, WebhookDelivery.State.RETRYING],
        next_attempt_at__lte=now,
    ).update(next_attempt_at=now + LEASE)
    return claimed == 1


def attempt_delivery(*, delivery_id):
    """Send one due delivery once and log the outcome. On failure, schedule the next attempt
    with backoff, or give up after ``max_attempts`` with the last error kept. Not due, already
    delivered or given up: does nothing. Returns the delivery."""
    if not _claim(delivery_id):
        return WebhookDelivery.objects.filter(pk=delivery_id).first()
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    endpoint = delivery.endpoint
    if not endpoint.is_active:
        result = webhooks.SendResult(False, None, "The endpoint was disabled.")
    else:
        result = webhooks.send(
            url=endpoint.url,
            secret=endpoint.secret,
            message_id=delivery.message_id,
            payload=delivery.payload,
        )
    return _record(delivery, result, give_up=not endpoint.is_active)


def _record(delivery, result, *, give_up=False):
    now = timezone.now()
    delivery.attempts += 1
    delivery.last_status_code = result.status_code
    delivery.last_error = result.error
    if result.ok:
        delivery.state = WebhookDelivery.State.DELIVERED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
    elif give_up or delivery.attempts >= delivery.max_attempts:
        delivery.state = WebhookDelivery.State.FAILED
        delivery.next_attempt_at = None
    else:
        delivery.state = WebhookDelivery.State.RETRYING
        delivery.next_attempt_at = now + timedelta(seconds=retry_delay(delivery.attempts))
    delivery.save(
        update_fields=[
            "attempts",
            "last_status_code",
            "last_error",
            "state",
            "delivered_at",
            "next_attempt_at",
            "updated_at",
        ]
    )
    if delivery.state == WebhookDelivery.State.RETRYING:
        _schedule_retry(delivery)
    return delivery


def _schedule_retry(delivery):
    """A one-off django-q2 schedule at the next attempt time (the scheduler is minute-grained;
    ``retry_due_deliveries`` is the safety net if a schedule is lost)."""
    from django_q.models import Schedule
    from django_q.tasks import schedule

    with contextlib.suppress(IntegrityError):  # already scheduled by an earlier run
        schedule(
            "notifications.tasks.deliver_webhook",
            delivery.pk,
            name=f"webhook-delivery-{delivery.pk}-{delivery.attempts}",
            schedule_type=Schedule.ONCE,
            next_run=delivery.next_attempt_at,
        )


def due_delivery_ids(now=None):
    return list(
        WebhookDelivery.objects.filter(
            state__in=[WebhookDelivery.State.PENDING, WebhookDelivery.State.RETRYING],
            next_attempt_at__lte=now or timezone.now(),
        ).values_list("pk", flat=True)[:500]
    )


def redeliver(*, delivery, actor):
    """Send a failed delivery again from the start (the admin fixed their endpoint)."""
    _require_admin(actor, delivery.endpoint.workspace)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        state=WebhookDelivery.State.PENDING,
        attempts=0,
        next_attempt_at=timezone.now(),
        last_error="",
    )
    transaction.on_commit(lambda: enqueue("notifications.tasks.deliver_webhook", delivery.pk))
