"""The job-event listener registered with ``jobs.hooks`` (called after the event commits).

``services`` is imported here, at app loading, not on the first notifiable event, which may
come on any thread. It does not import ``httpx``: a first import of ``httpx`` on one thread
while the OpenAI SDK runs on another makes the SDK see a half-initialised module and crash the
call (``AttributeError: partially initialized module 'httpx'``), and importing it at app loading
cost every task-cluster process ~5 MB. ``webhooks.send`` imports it, in the delivery task."""

from .services import on_job_events as notify


def on_job_events(events):
    notify(events)
