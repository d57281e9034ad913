"""Domain errors of the jobs app. Views and the API map each to a clear 4xx, never a 500; each
class carries the status and problem type the API answers with (``config.problems``)."""

from config.problems import DomainError


class JobError(DomainError):
    """Base class: ``message`` is written for the person who tried the action."""


class TransitionNotAllowed(JobError):
    """The job's status (or its attempt budget) does not allow the action."""

    problem_slug, problem_title = "transition-not-allowed", "Action not allowed now"


class ConcurrentUpdate(TransitionNotAllowed):
    """Someone else changed the job between reading and writing it; nothing was saved."""


class InvalidJobInput(JobError):
    """The input does not match the job type's fields; ``errors`` maps field → messages."""

    status, problem_slug, problem_title = 400, "validation-error", "Invalid request"

    def __init__(self, errors):
        super().__init__("The input is not valid for this job type.")
        self.errors = errors

    def problem_errors(self):
        return {
            (name if name.startswith(("input", "idempotency_key")) else f"input.{name}"): msgs
            for name, msgs in self.errors.items()
        }


class UnknownJobType(JobError):
    status, problem_slug, problem_title = 400, "validation-error", "Invalid request"

    def problem_errors(self):
        return {"job_type": [self.message]}


class LaneNotAllowed(JobError):
    """A job type or workspace that needs zero data retention asked for a retaining lane."""

    status, problem_slug, problem_title = 422, "lane-not-allowed", "Lane not allowed"


class NotAMember(JobError):
    """The user may not submit to (or act in) this workspace."""

    status, problem_slug, problem_title = 404, "not-found", "Not found"


class IdempotencyKeyReused(JobError):
    """The same idempotency key arrived with a different request."""

    status, problem_slug, problem_title = 422, "idempotency-key-reused", "Idempotency key reused"


class ToolCallNotFound(JobError):
    """No call of that id on this job."""

    status, problem_slug, problem_title = 404, "not-found", "Not found"


class ToolArgumentsInvalid(JobError):
    """Edited arguments for a tool call that do not fit the tool's schema."""

    status, problem_slug, problem_title = 400, "validation-error", "Invalid request"

    def problem_errors(self):
        return {"arguments": [self.message]}
