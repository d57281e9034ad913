"""Domain errors of the jobs app. Views and the API map each to a clear 4xx, never a 500."""


class JobError(Exception):
    """Base class: ``message`` is written for the person who tried the action."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message


class TransitionNotAllowed(JobError):
    """The job's status (or its attempt budget) does not allow the action."""


class ConcurrentUpdate(TransitionNotAllowed):
    """Someone else changed the job between reading and writing it; nothing was saved."""


class InvalidJobInput(JobError):
    """The input does not match the job type's fields; ``errors`` maps field → messages."""

    def __init__(self, errors):
        super().__init__("The input is not valid for this job type.")
        self.errors = errors


class UnknownJobType(JobError):
    pass


class LaneNotAllowed(JobError):
    """A job type or workspace that needs zero data retention asked for a retaining lane."""


class NotAMember(JobError):
    """The user may not submit to (or act in) this workspace."""
