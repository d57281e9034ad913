"""The job-event listener registered with ``jobs.hooks`` (called after the event commits).

``services`` is imported here, at app loading, not on the first notifiable event: it imports
``httpx`` (for outgoing webhooks), and a first import of ``httpx`` on one thread while the
OpenAI SDK runs on another makes the SDK see a half-initialised module and crash the call
(``AttributeError: partially initialized module 'httpx'``)."""

from .models import Topic
from .services import on_job_event as notify


def on_job_event(event):
    if event.kind not in Topic.values:
        return  # most events (dispatch, polls, partial output) are nobody's notification
    notify(event)
