"""REST API for jobs: each view translates one request into one selector read or service call.

Domain errors are not caught here: ``config.api.problem_exception_handler`` maps them to
problem details (409 for a status that doesn't allow the action, 422 for a reused idempotency
key, 400 for invalid input). A job of another workspace is 404, never 403.
"""

from django.conf import settings
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import status as http
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import JobCursorPagination
from config.api_schema import problems

from . import execution, explain, services
from .event_stream import resume_point, sse_response
from .job_types import all_job_types
from .models import Job, Priority
from .selectors import job_events_after, job_for, job_list_for, jobs_visible_to
from .serializers import (
    EventPageQuerySerializer,
    EventStreamQuerySerializer,
    JobDetailSerializer,
    JobEventPageSerializer,
    JobListFilterSerializer,
    JobSerializer,
    JobSubmitSerializer,
    JobTypeSerializer,
)

IDEMPOTENCY_KEY_MAX = 255

JOB_ID = OpenApiParameter("job_id", OpenApiTypes.UUID, OpenApiParameter.PATH)
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX},
    OpenApiParameter.HEADER,
    description=(
        "Any unique string of 1–255 characters. The same key with the same body returns the "
        "original job again (header `Idempotent-Replayed: true`); with a different body, 422. "
        "Keys are scoped per workspace and kept as long as the job."
    ),
)


def submit_request_schema():
    """The submit body per job type (``oneOf``), so clients and fuzzers see which ``input``
    goes with which ``job_type``. Built from the registry: one declaration, read everywhere."""
    variants = [
        {
            "type": "object",
            "title": job_type.title,
            "properties": {
                "job_type": {"type": "string", "enum": [job_type.name]},
                "input": job_type.input_json_schema(),
                "priority": {
                    "type": "string",
                    "enum": [p.label for p in Priority],
                    "default": Priority.NORMAL.label,
                },
                "workspace": {
                    "type": "string",
                    "format": "uuid",
                    "nullable": True,
                    "description": "Your workspace's id; optional when you belong to one.",
                },
            },
            "required": ["job_type", "input"],
        }
        for job_type in all_job_types()
    ]
    return {"oneOf": variants}


SUBMIT_EXAMPLE = OpenApiExample(
    "Summarize a document",
    request_only=True,
    value={
        "job_type": "summarize_document",
        "input": {"title": "Q3 report", "document": "Revenue grew 4 % while costs fell."},
        "priority": "normal",
    },
)


def visible_job(request, job_id):
    """The job if the caller may see it; 404 otherwise (other workspaces included)."""
    try:
        return job_for(request.user, job_id)
    except Job.DoesNotExist:
        raise NotFound("There is no job with this id that you can see.") from None


def job_detail_queryset(user):
    return jobs_visible_to(user).select_related("workspace", "submitter")


@extend_schema(tags=["job types"])
class JobTypesView(APIView):
    @extend_schema(
        operation_id="list_job_types",
        summary="List job types",
        description="Every job type you can submit, with a JSON Schema of its input.",
        responses={200: JobTypeSerializer(many=True)},
    )
    def get(self, request):
        return Response(JobTypeSerializer(all_job_types(), many=True).data)


@extend_schema(tags=["jobs"])
class JobListView(GenericAPIView):
    pagination_class = JobCursorPagination
    serializer_class = JobSerializer

    @extend_schema(
        operation_id="list_jobs",
        summary="List your jobs",
        description=(
            "Jobs you submitted, plus every job of the workspaces you administer; newest first, "
            "cursor-paged (follow `next`)."
        ),
        parameters=[JobListFilterSerializer],
        responses={200: JobSerializer(many=True), **problems(400)},
    )
    def get(self, request):
        filters = JobListFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        query = filters.validated_data
        jobs = job_list_for(request.user, **query)
        page = self.paginate_queryset(jobs)
        return self.get_paginated_response(JobSerializer(page, many=True).data)

    @extend_schema(
        operation_id="submit_job",
        summary="Submit a job",
        description=(
            "Validates `input` against the job type's fields (400 with `errors` keyed "
            "`input.<field>`), records the job and queues it. Send an `Idempotency-Key` so a "
            "retried request never makes a second job. A replay answers 201 with the original "
            "job and `Idempotent-Replayed: true`."
        ),
        parameters=[IDEMPOTENCY_KEY],
        request={"application/json": submit_request_schema()},
        examples=[SUBMIT_EXAMPLE],
        responses={201: JobDetailSerializer, **problems(400, 422)},
    )
    def post(self, request):
        key = request.headers.get("Idempotency-Key")
        if key is not None and not 0 < len(key) <= IDEMPOTENCY_KEY_MAX:
            raise ValidationError(
                {"Idempotency-Key": [f"Use a key of 1 to {IDEMPOTENCY_KEY_MAX} characters."]}
            )
        submission = JobSubmitSerializer(data=request.data, context={"request": request})
        submission.is_valid(raise_exception=True)
        data = submission.validated_data
        job = execution.submit_and_start(  # sync-lane work runs inside the request
            workspace=data["workspace"],
            submitter=request.user,
            job_type=data["job_type"],
            input=data["input"],
            priority=data["priority"],
            idempotency_key=key,
        )
        replayed = job.replayed
        headers = {"Location": reverse("api-job", kwargs={"job_id": job.pk})}
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        job = job_detail_queryset(request.user).get(pk=job.pk)
        return Response(
            JobDetailSerializer(job).data, status=http.HTTP_201_CREATED, headers=headers
        )


@extend_schema(tags=["jobs"], parameters=[JOB_ID])
class JobDetailView(APIView):
    @extend_schema(
        operation_id="get_job",
        summary="Get a job",
        description=(
            "Status, failure explanation, released output, attempts with usage and cost, timings."
        ),
        responses={200: JobDetailSerializer, **problems(404)},
    )
    def get(self, request, job_id):
        return Response(JobDetailSerializer(visible_job(request, job_id)).data)


class _JobActionView(APIView):
    """POST-only control that calls one service with the caller as actor."""

    service = None

    def post(self, request, job_id):
        job = self.service(job=visible_job(request, job_id), actor=request.user)
        job = job_detail_queryset(request.user).get(pk=job.pk)
        return Response(JobDetailSerializer(job).data)


def _action_schema(operation_id, summary, description):
    return extend_schema_view(
        post=extend_schema(
            operation_id=operation_id,
            tags=["jobs"],
            parameters=[JOB_ID],
            summary=summary,
            description=description,
            request=None,
            responses={200: JobDetailSerializer, **problems(404, 409)},
        )
    )


@_action_schema(
    "cancel_job", "Cancel a job", "Stops a queued, running or waiting job (409 otherwise)."
)
class JobCancelView(_JobActionView):
    service = staticmethod(services.cancel_job)


@_action_schema(
    "retry_job",
    "Retry a job",
    "Queues a failed, canceled or expired job again as a new attempt (409 otherwise, or when "
    "its attempts are used up).",
)
class JobRetryView(_JobActionView):
    service = staticmethod(services.retry_job)


@_action_schema(
    "archive_job", "Archive a job", "Hides a finished job from lists (409 if it is not finished)."
)
class JobArchiveView(_JobActionView):
    service = staticmethod(services.archive_job)


@extend_schema(tags=["jobs"], parameters=[JOB_ID])
class JobEventsView(APIView):
    @extend_schema(
        operation_id="list_job_events",
        summary="Read a job's timeline",
        description=(
            "Events oldest first, after the cursor `after`. Keep calling with `after=next_cursor` "
            "to follow the job without gaps or duplicates."
        ),
        parameters=[EventPageQuerySerializer],
        responses={200: JobEventPageSerializer, **problems(400, 404)},
    )
    def get(self, request, job_id):
        job = visible_job(request, job_id)
        query = EventPageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        after, limit = query.validated_data["after"], query.validated_data["limit"]
        events = job_events_after(job, after, limit=limit)
        page = events[:limit]
        body = {
            "results": page,
            "next_cursor": page[-1].pk if page else after,
            "has_more": len(events) > limit,
        }
        context = {"withhold_draft": explain.draft_withheld(job)}
        return Response(JobEventPageSerializer(body, context=context).data)


SSE_EVENT_SCHEMA = {
    "type": "object",
    "description": "One Server-Sent Event (the first only sets `retry`).",
    "properties": {
        "event": {"type": "string", "enum": ["job_event", "end"]},
        "id": {"type": "string", "pattern": "^[0-9]+$", "description": "The event's cursor."},
        "data": {
            "type": "string",
            "description": "JSON: a job event (as in /events) for `job_event`; "
            '`{"status": …}` for `end`.',
        },
        "retry": {"type": "integer", "description": "Reconnect delay in milliseconds."},
    },
}


class EventStreamRenderer(JSONRenderer):
    """Lets clients ask for ``text/event-stream``; errors on this endpoint are still JSON."""

    media_type = "text/event-stream"
    format = "event-stream"


@extend_schema(tags=["jobs"], parameters=[JOB_ID])
class JobEventStreamView(APIView):
    renderer_classes = [JSONRenderer, EventStreamRenderer]

    @extend_schema(
        operation_id="stream_job_events",
        summary="Stream a job's timeline (Server-Sent Events)",
        description=(
            "Each event is `id: <cursor>`, `event: job_event`, `data: <the event as JSON>`; the "
            "stream ends with `event: end` once the job is finished. Reconnect with "
            "`Last-Event-ID` (or `?after=`) to resume with nothing lost or repeated. A stream "
            "also closes after a few minutes; reconnecting resumes it."
        ),
        parameters=[
            EventStreamQuerySerializer,
            OpenApiParameter(
                "Last-Event-ID",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description=(
                    "The id of the last event you received. As browsers' EventSource sends it "
                    "back as it got it, a value that is not a whole number reads as 0."
                ),
            ),
        ],
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                SSE_EVENT_SCHEMA,
                description="A stream of Server-Sent Events; the schema describes one event.",
            ),
            **problems(400, 404),
        },
    )
    def get(self, request, job_id):
        job = visible_job(request, job_id)
        EventStreamQuerySerializer(data=request.query_params).is_valid(raise_exception=True)
        return sse_response(
            job.pk,
            resume_point(request),
            max_seconds=settings.API_EVENT_STREAM_MAX_SECONDS,
            withhold_draft=explain.draft_withheld(job),
        )
