"""Domain errors of the review app. ``message`` is written for the reviewer who tried; views map
``status`` to the response code (never a 500)."""

from config.problems import DomainError


class ReviewError(DomainError):
    status = 409


class NotAReviewer(ReviewError):
    """The user does not review the job's workspace. Views answer 404 so nothing leaks."""

    status = 404


class OwnJob(ReviewError):
    """Four-eyes: nobody reviews a job they submitted."""

    status = 403


class ApproverRoleRequired(ReviewError):
    """The job's policy names a role (admin by default for external effects) the user lacks."""

    status = 403


class NotReviewable(ReviewError):
    """The job is not (or no longer) waiting for a review decision."""


class ClaimHeld(ReviewError):
    """Another reviewer holds a live claim on the draft."""


class ClaimRequired(ReviewError):
    """Deciding or editing needs the reviewer's own live claim."""


class ClaimExpired(ClaimRequired):
    """The reviewer's claim lapsed; they must claim the draft again."""


class NoteRequired(ReviewError):
    """Reject, send back and escalate need words for the next person."""

    status = 400


class NothingToReview(ReviewError):
    """The job has no draft text to approve or edit."""
