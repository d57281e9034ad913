"""Every write of the review step: claims, edits, decisions and the release of approved effects.

Each service runs in one transaction, locks the job row first (so two reviewers acting on one
draft are served one after the other), checks who may act (``_guard``), and leaves its trace:
a ``Decision`` row for decisions and a ``JobEvent`` with the reviewer as actor for everything.
The job itself changes only through the named ``jobs.services`` outcome services
(``approve_job``, ``reject_job``, ``send_back_job``, ...); the release of an approved external
effect lives in ``release.py``. Refusals raise
``review.errors`` (or ``jobs.errors`` for status conflicts) with a message for the reviewer.
"""

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from jobs import services as job_services
from jobs.errors import JobError
from jobs.job_types import AuthorityClass, get_job_type
from jobs.models import Artifact, Job, ReviewState, Status, ToolCall
from jobs.queue import enqueue

from .errors import (
    ApproverRoleRequired,
    ClaimExpired,
    ClaimHeld,
    ClaimRequired,
    NotAReviewer,
    NoteRequired,
    NothingToReview,
    NotReviewable,
    OwnJob,
    ReviewError,
)
from .models import (
    CLAIM_LEASE,
    POLICY_FIELDS,
    Decision,
    ReleaseRecord,
    ReviewClaim,
    ReviewPolicy,
    ReviewPolicyChange,
)
from .selectors import (
    current_draft,
    draft_access,
    may_approve,
    policy_for,
    review_role,
    text_versions,
)

# Items light enough to approve from the queue without opening each one.
BULK_CLASSES = (AuthorityClass.LOW_RISK_WRITE, AuthorityClass.READ_ONLY)


# --- checks --------------------------------------------------------------------------------


def _name(user):
    return user.get_full_name() or user.get_username()


def _hm(moment):
    return timezone.localtime(moment).strftime("%H:%M")


def _lock(job):
    """Re-read the job under a row lock: concurrent review actions on it queue up here."""
    return Job.objects.select_for_update().get(pk=job.pk)


def _open_claim(job):
    return (
        ReviewClaim.objects.filter(job=job, released_at__isnull=True)
        .select_related("reviewer")
        .first()
    )


def _own_live_claim(job, reviewer, now):
    claim = _open_claim(job)
    if claim is not None and claim.reviewer_id != reviewer.pk and claim.is_live(now):
        raise ClaimHeld(
            f"{_name(claim.reviewer)} is working on this draft (claimed until "
            f"{_hm(claim.expires_at)}). You can act once they release it or the claim expires."
        )
    if claim is None or claim.reviewer_id != reviewer.pk:
        raise ClaimRequired("Claim this draft before you act on it.")
    if not claim.is_live(now):
        raise ClaimExpired(
            f"Your claim on this draft expired at {_hm(claim.expires_at)}. "
            "Claim it again to continue; your saved edits are kept."
        )
    return claim


def _guard(job, reviewer, *, claim=True):
    """Who may act on ``job`` now (``selectors.draft_access``, the rule the console's buttons
    follow). Returns ``(access, live claim or None)`` or raises with the reason."""
    access = draft_access(reviewer, job)
    if access.role is None:
        raise NotAReviewer("There is no such draft in your review queue.")
    if access.is_own:
        raise OwnJob("You submitted this job, so another reviewer must decide on it (four-eyes).")
    if not access.is_open:
        state = (
            "approved and waiting for its action to run"
            if job.review_state == ReviewState.APPROVED and job.status == Status.NEEDS_REVIEW
            else job.get_status_display().lower()
        )
        raise NotReviewable(f"This job is no longer waiting for review (it is {state}).")
    if access.escalated_block:
        raise ApproverRoleRequired(
            "This draft was escalated to an admin; only an admin can act on it now."
        )
    return access, (_own_live_claim(job, reviewer, timezone.now()) if claim else None)


def _required(text, what):
    text = (text or "").strip()
    if not text:
        raise NoteRequired(what)
    return text


def _close(claim, end, at=None):
    ReviewClaim.objects.filter(pk=claim.pk).update(released_at=at or timezone.now(), end=end)


# --- claims --------------------------------------------------------------------------------


@transaction.atomic
def claim_draft(*, job, reviewer):
    """Take (or extend) the reviewer's lease on a draft for ``CLAIM_LEASE``.

    Exclusive: at most one open claim per job (database constraint, job row locked). Claiming
    again while holding it renews it. An expired claim of someone else is closed (event
    ``claim_expired``) and replaced. Emits ``claimed``. Returns the claim.
    """
    job = _lock(job)
    _guard(job, reviewer, claim=False)
    now = timezone.now()
    claim = _open_claim(job)
    if claim is not None and claim.is_live(now):
        if claim.reviewer_id == reviewer.pk:
            return _extend(job, claim, reviewer, now)
        _own_live_claim(job, reviewer, now)  # raises ClaimHeld with the holder's name
    if claim is not None:
        _close(claim, ReviewClaim.End.EXPIRED, at=claim.expires_at)
        job_services.record_note(
            job,
            "claim_expired",
            actor="system:review",
            message=f"{_name(claim.reviewer)}'s claim expired at {_hm(claim.expires_at)}.",
            data={"reviewer": claim.reviewer.get_username()},
        )
    try:
        with transaction.atomic():
            claim = ReviewClaim.objects.create(
                job=job, reviewer=reviewer, claimed_at=now, expires_at=now + CLAIM_LEASE
            )
    except IntegrityError:  # the constraint caught a claim the lock did not (belt and braces)
        raise ClaimHeld("Another reviewer claimed this draft a moment ago.") from None
    job_services.record_note(
        job,
        "claimed",
        actor=reviewer,
        message=f"Claimed by {_name(reviewer)} until {_hm(claim.expires_at)}.",
        data={"expires_at": claim.expires_at.isoformat()},
    )
    return claim


def _extend(job, claim, reviewer, now):
    claim.expires_at = now + CLAIM_LEASE
    claim.renewals += 1
    claim.save(update_fields=["expires_at", "renewals"])
    job_services.record_note(
        job,
        "claim_renewed",
        actor=reviewer,
        message=f"Claim renewed until {_hm(claim.expires_at)}.",
        data={"expires_at": claim.expires_at.isoformat()},
    )
    return claim


@transaction.atomic
def renew_claim(*, job, reviewer):
    """Extend the reviewer's live claim by another lease. An expired claim is not renewed:
    ``ClaimExpired`` asks the reviewer to claim again (someone else may have). Emits
    ``claim_renewed``."""
    job = _lock(job)
    _, claim = _guard(job, reviewer)
    return _extend(job, claim, reviewer, timezone.now())


@transaction.atomic
def release_claim(*, job, reviewer):
    """Give the draft back to the queue. Releasing a lapsed claim of one's own just closes it.
    Emits ``claim_released``. Returns the closed claim."""
    job = _lock(job)
    if review_role(reviewer, job) is None:
        raise NotAReviewer("There is no such draft in your review queue.")
    claim = _open_claim(job)
    if claim is None or claim.reviewer_id != reviewer.pk:
        raise ClaimRequired("You hold no claim on this draft.")
    _close(claim, ReviewClaim.End.RELEASED)
    job_services.record_note(
        job, "claim_released", actor=reviewer, message=f"{_name(reviewer)} released the claim."
    )
    claim.refresh_from_db()
    return claim


# --- edits and decisions -------------------------------------------------------------------


def _normalized(text):
    return (text or "").replace("\r\n", "\n").replace("\r", "\n")


def _current(job):
    draft = current_draft(text_versions(job))
    if draft is None:
        raise NothingToReview("This job has no draft text to review.")
    return draft


@transaction.atomic
def edit_draft(*, job, reviewer, text):
    """Save the reviewer's edit as the next text version (earlier versions stay). Saving the
    same text again adds nothing. Needs the reviewer's live claim. Emits ``edited``. Returns
    the current version."""
    job = _lock(job)
    _guard(job, reviewer)
    text = _normalized(text)
    if not text.strip():
        raise NoteRequired("The draft can't be empty. To stop it, reject it with a reason.")
    current = _current(job)
    if current.text == text:
        return current
    artifact = job_services.add_artifact(
        job=job, kind=Artifact.Kind.TEXT, text=text, actor=reviewer, note="Reviewer edit"
    )
    job_services.record_note(
        job,
        "edited",
        actor=reviewer,
        message=f"{_name(reviewer)} saved version {artifact.version}.",
        data={"version": artifact.version, "based_on": current.version},
    )
    return artifact


def _decide(job, reviewer, kind, *, note="", artifact=None):
    return Decision.objects.create(
        job=job,
        reviewer=reviewer,
        kind=kind,
        note=note,
        artifact=artifact,
        artifact_version=artifact.version if artifact else None,
    )


@transaction.atomic
def approve_draft(*, job, reviewer, text=None):
    """Approve the current draft (saving ``text`` as a last edit first, if given and changed).

    Drafts, low-risk writes and reviewed read-only jobs complete at once (event ``approved``).
    External effects need the policy's approver role; they record the approval (event
    ``approved``, review state approved) and enqueue ``review.tasks.run_release`` after commit,
    which runs the action once and completes the job. Returns the ``Decision``.
    """
    job = _lock(job)
    access, claim = _guard(job, reviewer)
    _no_waiting_calls(job)
    spec = get_job_type(job.job_type)
    is_effect = job.authority_class == AuthorityClass.EXTERNAL_EFFECT
    if is_effect:
        policy = policy_for(job.job_type)
        if not access.can_approve:
            raise ApproverRoleRequired(
                f"Approving “{spec.title}” needs the {policy.approver_role} role in this "
                "workspace. You can still edit, send back, reject or escalate it."
            )
    artifact = edit_draft(job=job, reviewer=reviewer, text=text) if text is not None else None
    artifact = artifact or _current(job)
    kind = Decision.Kind.EDIT_APPROVE if artifact.created_by_id else Decision.Kind.APPROVE
    decision = _decide(job, reviewer, kind, artifact=artifact)
    _close(claim, ReviewClaim.End.DECIDED)
    data = {"decision": decision.pk, "version": artifact.version, "edited": kind != "approve"}
    if is_effect:
        _prepare_release(job, decision)
        decision.job = job_services.approve_for_release(
            job=job,
            actor=reviewer,
            message=f"Approved by {_name(reviewer)}; Steward carries the action out once, now.",
            data={**data, "release": "pending"},
        )
        transaction.on_commit(lambda: enqueue("review.tasks.run_release", str(job.pk)))
        return decision
    decision.job = job_services.approve_job(
        job=job,
        actor=reviewer,
        message=f"Approved by {_name(reviewer)} (version {artifact.version}).",
        data=data,
    )
    return decision


def _prepare_release(job, decision):
    record = ReleaseRecord.objects.filter(job=job).first()
    if record is None:
        ReleaseRecord.objects.create(
            job=job, decision=decision, idempotency_key=f"release:{job.pk}"
        )
        return
    if record.state == ReleaseRecord.State.SUCCEEDED:
        raise NotReviewable("This job's action already ran; it cannot be approved again.")
    # An earlier release failed or was abandoned: run again under the same idempotency key.
    ReleaseRecord.objects.filter(pk=record.pk).update(
        state=ReleaseRecord.State.PENDING, decision=decision, error="", finished_at=None
    )


@transaction.atomic
def reject_draft(*, job, reviewer, reason):
    """Reject the draft: the job fails with kind ``review`` and the reason as its explanation.
    The reason is required. Emits ``rejected``. Returns the ``Decision``."""
    job = _lock(job)
    _, claim = _guard(job, reviewer)
    reason = _required(reason, "Give a reason for rejecting; the submitter will read it.")
    artifact = current_draft(text_versions(job))
    decision = _decide(job, reviewer, Decision.Kind.REJECT, note=reason, artifact=artifact)
    _close(claim, ReviewClaim.End.DECIDED)
    decision.job = job_services.reject_job(
        job=job, actor=reviewer, reason=reason, data={"decision": decision.pk}
    )
    return decision


# --- tool calls waiting for approval in the middle of a run --------------------------------


def _no_waiting_calls(job):
    """A run waiting on tool calls has no draft to approve or send back yet."""
    if ToolCall.objects.filter(job=job, state=ToolCall.State.AWAITING_APPROVAL).exists():
        raise NotReviewable(
            "The run waits for your decision on a tool call; approve or reject the call (or "
            "stop the run) first."
        )


def _waiting_call(job, call_id):
    call = ToolCall.objects.filter(job=job, call_id=call_id).first()
    if call is None:
        raise NotReviewable("There is no such tool call on this job.")
    return call


def _after_call_decision(job, claim):
    """The reviewer's claim ends once no call of the job waits for a decision."""
    if not ToolCall.objects.filter(job=job, state=ToolCall.State.AWAITING_APPROVAL).exists():
        _close(claim, ReviewClaim.End.DECIDED)


@transaction.atomic
def approve_tool_call(*, job, reviewer, call_id, arguments=None):
    """Approve a call a tool run waits on, as the model wrote it or with edited ``arguments``;
    it then runs once. Needs the tool's approver role and your claim; never your own job.
    Returns the call."""
    job = _lock(job)
    access, claim = _guard(job, reviewer)
    call = _waiting_call(job, call_id)
    tool = get_job_type(job.job_type).tool(call.name)
    if tool is None or not may_approve(access.role, tool):
        role = tool.approver_role if tool else "admin"
        raise ApproverRoleRequired(
            f"Approving this call needs the {role} role in this workspace. You can still "
            "reject it with a reason, or escalate the job."
        )
    call = job_services.approve_tool_call(
        job=job, call_id=call_id, actor=reviewer, arguments=arguments
    )
    kind = Decision.Kind.EDIT_APPROVE if call.original_arguments is not None else None
    _decide(job, reviewer, kind or Decision.Kind.APPROVE, note=f"Tool call {call.name} approved.")
    _after_call_decision(job, claim)
    return call


@transaction.atomic
def reject_tool_call(*, job, reviewer, call_id, reason):
    """Reject a call a tool run waits on: it does not run, and ``reason`` goes back to the
    model as the call's output. Needs your claim. Returns the call."""
    job = _lock(job)
    _, claim = _guard(job, reviewer)
    reason = _required(reason, "Give a reason for rejecting the call; the model reads it.")
    _waiting_call(job, call_id)
    call = job_services.reject_tool_call(job=job, call_id=call_id, actor=reviewer, reason=reason)
    _decide(job, reviewer, Decision.Kind.REJECT, note=f"Tool call {call.name}: {reason}")
    _after_call_decision(job, claim)
    return call


@transaction.atomic
def send_back(*, job, reviewer, notes):
    """Send the draft back for another attempt whose instructions carry ``notes``.

    The job returns to queued (event ``sent_back`` with ``{"notes": notes}``, which
    ``jobs.services.reviewer_notes_for`` reads) and dispatch is enqueued after commit. Refused
    when the job has no attempts left. Returns the ``Decision``.
    """
    job = _lock(job)
    _, claim = _guard(job, reviewer)
    _no_waiting_calls(job)
    notes = _required(notes, "Write notes for the next attempt: what should change?")
    artifact = current_draft(text_versions(job))
    decision = _decide(job, reviewer, Decision.Kind.SEND_BACK, note=notes, artifact=artifact)
    _close(claim, ReviewClaim.End.DECIDED)
    decision.job = job_services.send_back_job(
        job=job, actor=reviewer, notes=notes, data={"decision": decision.pk}
    )
    return decision


@transaction.atomic
def escalate(*, job, reviewer, note):
    """Hand the draft to the workspace's admins with a note; from now on only an admin can act
    on it. Releases the reviewer's claim. Emits ``escalated``. Returns the ``Decision``."""
    job = _lock(job)
    _, claim = _guard(job, reviewer)
    note = _required(note, "Write a note for the admin: what should they look at?")
    if job.review_state == ReviewState.ESCALATED:
        raise NotReviewable("This draft is already escalated to an admin.")
    artifact = current_draft(text_versions(job))
    decision = _decide(job, reviewer, Decision.Kind.ESCALATE, note=note, artifact=artifact)
    _close(claim, ReviewClaim.End.ESCALATED)
    decision.job = job_services.escalate_job(
        job=job,
        actor=reviewer,
        message=f"Escalated to an admin by {_name(reviewer)}: {note}",
        data={"note": note, "decision": decision.pk},
    )
    return decision


# --- policies ------------------------------------------------------------------------------


def _policy_values(policy):
    """The policy's overrides as JSON (a duration in seconds); ``{}`` for no policy."""
    if policy is None:
        return {}
    values = {name: getattr(policy, name) for name in POLICY_FIELDS}
    if values["review_sla"] is not None:
        values["review_sla"] = values["review_sla"].total_seconds()
    return values


@transaction.atomic
def save_review_policy(*, policy, actor):
    """Save an admin's edit of a job type's review policy (validated by the caller's form)
    and record the change with the values before and after. Saving without a change records
    nothing. Returns the policy."""
    stored = ReviewPolicy.objects.select_for_update().filter(pk=policy.pk).first()
    before, after = _policy_values(stored), _policy_values(policy)
    if stored is not None and before == after and stored.job_type == policy.job_type:
        return stored
    policy.updated_by = actor
    policy.save()
    kind = ReviewPolicyChange.Kind.CHANGED if stored else ReviewPolicyChange.Kind.CREATED
    ReviewPolicyChange.objects.create(
        job_type=policy.job_type, kind=kind, before=before, after=after, changed_by=actor
    )
    return policy


@transaction.atomic
def delete_review_policy(*, policy, actor):
    """Remove a job type's overrides (its declaration applies again), recording the change."""
    ReviewPolicyChange.objects.create(
        job_type=policy.job_type,
        kind=ReviewPolicyChange.Kind.DELETED,
        before=_policy_values(policy),
        after={},
        changed_by=actor,
    )
    policy.delete()


@dataclass(frozen=True)
class BulkOutcome:
    job_id: object
    approved: bool
    message: str


def bulk_approve(*, jobs, reviewer):
    """Approve many low-risk drafts, each in its own transaction with every single-item check
    (claim, four-eyes, role, status). One refusal never stops the rest. Returns one
    ``BulkOutcome`` per job, in order."""
    outcomes = []
    for job in jobs:
        try:
            with transaction.atomic():
                if job.authority_class not in BULK_CLASSES:
                    raise NotReviewable(
                        "Only low-risk items can be approved in bulk; open this one to review it."
                    )
                claim_draft(job=job, reviewer=reviewer)
                approve_draft(job=job, reviewer=reviewer)
        except (ReviewError, JobError) as error:
            outcomes.append(BulkOutcome(job.pk, False, error.message))
        else:
            outcomes.append(BulkOutcome(job.pk, True, "Approved."))
    return outcomes
