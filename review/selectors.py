"""Reads of the review step: the effective policy of a job type, the queue, one reviewable job,
and the draft's versions. Every job read starts from the user's reviewer/admin workspaces."""

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Exists, OuterRef, Prefetch
from django.utils import timezone

from accounts.models import Role
from accounts.selectors import REVIEW_ROLES, role_in, workspace_id_list
from jobs.errors import UnknownJobType
from jobs.job_types import AuthorityClass, get_job_type
from jobs.models import Artifact, Job, ReviewState, Status

from .models import ReviewClaim, ReviewPolicy

QUEUE_STATES = (ReviewState.PENDING, ReviewState.ESCALATED)
ORDERS = {
    "age": ("created_at",),
    "priority": ("-priority", "created_at"),
}
CLAIM_STATES = ("unclaimed", "mine", "others")


@dataclass(frozen=True)
class EffectivePolicy:
    """A job type's review policy after the admin's overrides."""

    job_type: str
    sample_rate: float
    approver_role: str
    review_sla: timedelta
    review_sensitive_input: bool


def _effective(job_type, override):
    spec = get_job_type(job_type)

    def pick(field, default):
        value = getattr(override, field, None) if override else None
        return default if value in (None, "") else value

    return EffectivePolicy(
        job_type=spec.name,
        sample_rate=float(pick("sample_rate", spec.review_sample_rate)),
        approver_role=pick("approver_role", spec.approver_role),
        review_sla=pick("review_sla", spec.review_sla),
        review_sensitive_input=bool(pick("review_sensitive_input", True)),
    )


def policy_for(job_type):
    """The effective policy of one job type (one query)."""
    return _effective(job_type, ReviewPolicy.objects.filter(job_type=job_type).first())


def policies_by_job_type():
    """``{job_type: EffectivePolicy}`` for every job type with an override or a declaration,
    read with one query, for pages that show many jobs."""
    overrides = {p.job_type: p for p in ReviewPolicy.objects.all()}

    class Policies(dict):
        def __missing__(self, name):
            try:
                value = _effective(name, overrides.get(name))
            except UnknownJobType:
                return None
            self[name] = value
            return value

    return Policies()


def may_approve(role, policy):
    """Whether a workspace role meets a policy's approver role (admin outranks reviewer)."""
    if role == Role.ADMIN:
        return True
    return role == Role.REVIEWER and policy.approver_role == Role.REVIEWER


def review_jobs_for(user):
    """Every job in the workspaces where ``user`` reviews: the scope all console reads use."""
    return Job.objects.filter(workspace_id__in=workspace_id_list(user, roles=REVIEW_ROLES))


def live_claims(now=None):
    return ReviewClaim.objects.live(now).select_related("reviewer")


def review_queue(user, *, job_type=None, authority_class=None, claim_state=None, order="age"):
    """Jobs waiting for a decision in ``user``'s review workspaces.

    Each job carries ``live_claim_list`` (zero or one live claim, reviewer joined), so a page of
    any length costs the same few queries.
    """
    now = timezone.now()
    jobs = review_jobs_for(user).filter(status=Status.NEEDS_REVIEW, review_state__in=QUEUE_STATES)
    if job_type:
        jobs = jobs.filter(job_type=job_type)
    if authority_class:
        jobs = jobs.filter(authority_class=authority_class)
    if claim_state in CLAIM_STATES:
        live = ReviewClaim.objects.live(now).filter(job=OuterRef("pk"))
        if claim_state == "unclaimed":
            jobs = jobs.filter(~Exists(live))
        elif claim_state == "mine":
            jobs = jobs.filter(Exists(live.filter(reviewer=user)))
        else:
            jobs = jobs.filter(Exists(live.exclude(reviewer=user)))
    return (
        jobs.select_related("workspace", "submitter")
        .prefetch_related(
            Prefetch("review_claims", queryset=live_claims(now), to_attr="live_claim_list")
        )
        .order_by(*ORDERS.get(order, ORDERS["age"]))
    )


def reviewable_job_for(user, job_id):
    """One job of a workspace ``user`` reviews, in any status, or ``Job.DoesNotExist``."""
    return review_jobs_for(user).select_related("workspace", "submitter").get(pk=job_id)


def review_role(user, job):
    """The user's role in the job's workspace if it lets them review, else ``None``."""
    role = role_in(user, job.workspace_id)
    return role if role in REVIEW_ROLES else None


@dataclass(frozen=True)
class DraftAccess:
    """What ``user`` may do with a draft now: the one rule the console's buttons and the
    services' refusals both read."""

    role: str | None  # the user's review role in the job's workspace; None: not a reviewer
    is_open: bool  # the draft waits for a decision
    is_own: bool  # the user submitted it (four-eyes: someone else decides)
    escalated_block: bool  # escalated to an admin, and the user is not one
    can_approve: bool  # the role may approve this job type (an external effect needs more)

    @property
    def can_work(self):
        return (
            self.role is not None and self.is_open and not self.is_own and not self.escalated_block
        )


def draft_access(user, job, policy=None):
    """``DraftAccess`` of ``user`` to ``job``; ``policy`` saves a query when the caller has it."""
    role = review_role(user, job)
    is_effect = job.authority_class == AuthorityClass.EXTERNAL_EFFECT
    return DraftAccess(
        role=role,
        is_open=job.status == Status.NEEDS_REVIEW and job.review_state in QUEUE_STATES,
        is_own=job.submitter_id == user.pk,
        escalated_block=job.review_state == ReviewState.ESCALATED and role != Role.ADMIN,
        can_approve=not is_effect or may_approve(role, policy or policy_for(job.job_type)),
    )


def live_claim_on(job, now=None):
    return live_claims(now).filter(job=job).first()


def text_versions(job):
    """All text versions of the job's output, oldest first (stale results excluded)."""
    return list(
        Artifact.objects.filter(job=job, kind=Artifact.Kind.TEXT, is_stale=False)
        .select_related("created_by", "attempt")
        .order_by("version")
    )


def current_draft(versions):
    """The newest text version: what an approval releases."""
    return versions[-1] if versions else None


def model_version(versions):
    """The newest version the model wrote (not a reviewer): the base every diff compares to."""
    written_by_model = [v for v in versions if v.created_by_id is None]
    return written_by_model[-1] if written_by_model else (versions[0] if versions else None)
