"""The job-event listener registered with ``jobs.hooks`` (called after the event commits)."""

from .models import Topic


def on_job_event(event):
    if event.kind not in Topic.values:
        return  # most events (dispatch, polls, partial output) are nobody's notification
    from .services import on_job_event as notify

    notify(event)
