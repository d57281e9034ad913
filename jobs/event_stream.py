"""Server-Sent Events over a job's audit trail, shared by the job page and the REST API.

The event id is the ``JobEvent`` primary key, so a client that reconnects with
``Last-Event-ID: N`` (or ``?after=N``) receives exactly the events after N: nothing lost,
nothing twice. The stream reads the database every ``poll`` seconds, sends a comment as a
heartbeat so idle proxies keep the connection, and ends with an ``end`` event once the job is
finished and every event has been sent. While the job waits for the model to start, the stream
asks for a look at it now and then (``services.look_soon``): an open page is what makes that
look worth its cost. Serve it from the ASGI server (uvicorn): an async
iterator holds no worker thread while it waits.
"""

import asyncio
import json

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.http import StreamingHttpResponse

from . import services
from .models import TERMINAL, Job, JobEvent, Status

BATCH = 200


def event_payload(event, *, withhold_draft=False):
    """The public shape of one job event (pages and API use the same). ``withhold_draft``: the
    streamed text of a draft its submitter may not read before review is left out."""
    data = event.data
    if withhold_draft and event.kind == "partial_output" and data:
        data = {key: value for key, value in data.items() if key != "text"} | {"withheld": True}
    return {
        "id": event.pk,
        "kind": event.kind,
        "from_status": event.from_status,
        "to_status": event.to_status,
        "message": event.message,
        "actor": event.actor_label,
        "created_at": event.created_at.isoformat(),
        "data": data,
    }


def format_sse(event, *, withhold_draft=False):
    body = json.dumps(event_payload(event, withhold_draft=withhold_draft), separators=(",", ":"))
    return f"id: {event.pk}\nevent: job_event\ndata: {body}\n\n"


def resume_point(request):
    """The last event id the client has: ``Last-Event-ID`` header first, then ``?after=``."""
    raw = request.headers.get("Last-Event-ID") or request.GET.get("after") or "0"
    try:
        return max(int(raw), 0)
    except ValueError:
        return 0


def _read(job_id, after):
    """One look at the database, from an executor thread: its connection is handed back (to the
    pool, when there is one) before the stream sleeps, so an open stream holds none."""
    try:
        events = list(JobEvent.objects.filter(job_id=job_id, id__gt=after).order_by("id")[:BATCH])
        status = Job.objects.filter(pk=job_id).values_list("status", flat=True).first()
    finally:
        close_old_connections()
    return events, status


def _look_soon(job_id):
    try:
        services.look_soon(job_id)
    finally:
        close_old_connections()


async def stream_job_events(
    job_id, after, *, poll=0.5, heartbeat=15.0, max_seconds=None, withhold_draft=False
):
    """Yield SSE text for the events of ``job_id`` after ``after`` until the job is finished."""
    loop = asyncio.get_running_loop()
    started = last_sent = next_look = loop.time()
    yield "retry: 1000\n\n"
    while True:
        events, status = await sync_to_async(_read, thread_sensitive=False)(job_id, after)
        for event in events:
            after = event.pk
            yield format_sse(event, withhold_draft=withhold_draft)
            last_sent = loop.time()
        if len(events) == BATCH:
            continue
        if status is None or status in TERMINAL:
            yield f"id: {after}\nevent: end\ndata: {json.dumps({'status': status})}\n\n"
            return
        now = loop.time()
        if max_seconds is not None and now - started > max_seconds:
            return
        if status == Status.QUEUED and now >= next_look:
            # at the pump's backoff: every 1.5 s at first, a tenth of the time watched later
            await sync_to_async(_look_soon, thread_sensitive=False)(job_id)
            next_look = now + max(settings.POLL_MIN_INTERVAL, 0.1 * (now - started))
        if now - last_sent >= heartbeat:
            yield ": keep-alive\n\n"
            last_sent = now
        await asyncio.sleep(poll)


def sse_response(job_id, after, **options):
    response = StreamingHttpResponse(
        stream_job_events(job_id, after, **options), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response
