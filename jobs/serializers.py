"""The REST API's shapes for jobs: what a request may say and what a response shows.

Serializers validate the shape at the edge; the job type's own field rules are applied by
``jobs.services.submit_job`` (one place for the web form and the API).
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.selectors import WorkspaceChoiceError, submission_workspace, workspaces_for
from config.bodies import BodySerializer, QuerySerializer, WordsField

from .errors import UnknownJobType
from .event_stream import event_payload
from .explain import tool_steps
from .job_types import get_job_type
from .models import Priority, Status
from .selectors import released_output
from .services import allowed_controls

PRIORITY_NAMES = {p.label: p.value for p in Priority}


class PriorityField(serializers.ChoiceField):
    """``"low" | "normal" | "high"`` on the wire, ``Priority`` in the database."""

    def __init__(self, **kwargs):
        super().__init__(choices=list(PRIORITY_NAMES), **kwargs)

    def to_internal_value(self, data):
        return Priority(PRIORITY_NAMES[super().to_internal_value(data)])

    def to_representation(self, value):
        return Priority(value).label

    def get_default(self):
        value = super().get_default()  # DRF does not pass defaults through to_internal_value
        return Priority(PRIORITY_NAMES[value]) if isinstance(value, str) else value


# --- requests -------------------------------------------------------------------------------


class JobSubmitSerializer(BodySerializer):
    job_type = WordsField(max_length=64, help_text="A name from GET /api/v1/job-types.")
    input = serializers.DictField(
        child=serializers.JSONField(),
        help_text="The job type's input fields (see its `input_schema`).",
    )
    priority = PriorityField(default="normal")
    workspace = serializers.UUIDField(
        required=False,
        allow_null=True,
        help_text="Your workspace's id; optional when you belong to exactly one.",
    )

    def validate_job_type(self, value):
        try:
            return get_job_type(value).name
        except UnknownJobType as error:
            raise serializers.ValidationError(error.message) from None

    def validate(self, attrs):
        errors = get_job_type(attrs["job_type"]).schema_errors(attrs["input"])
        if errors:
            raise serializers.ValidationError(
                {(n if n == "input" else f"input.{n}"): msgs for n, msgs in errors.items()}
            )
        workspaces = workspaces_for(self.context["request"].user)
        try:
            attrs["workspace"] = submission_workspace(workspaces, attrs.get("workspace"))
        except WorkspaceChoiceError as error:
            raise serializers.ValidationError({"workspace": [error.message]}) from None
        return attrs


class JobListFilterSerializer(QuerySerializer):
    """Query parameters of GET /api/v1/jobs."""

    status = serializers.ChoiceField(choices=Status.choices, required=False)
    job_type = WordsField(required=False, max_length=64)
    archived = serializers.BooleanField(
        default=False, help_text="true: only archived jobs; false (default): only the others."
    )
    created_after = serializers.DateTimeField(required=False)


class EventPageQuerySerializer(QuerySerializer):
    """Query parameters of GET /api/v1/jobs/{id}/events."""

    after = serializers.IntegerField(
        min_value=0,
        default=0,
        help_text="Return events after this cursor (a previous `next_cursor`); 0 = from the start.",
    )
    limit = serializers.IntegerField(min_value=1, max_value=500, default=100)


class EventStreamQuerySerializer(QuerySerializer):
    after = serializers.IntegerField(
        min_value=0,
        required=False,
        help_text="Resume after this event id (the `Last-Event-ID` header wins when sent).",
    )


# --- responses ------------------------------------------------------------------------------


class JobTypeSerializer(serializers.Serializer):
    name = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    lane = serializers.CharField()
    authority_class = serializers.CharField()
    input_schema = serializers.SerializerMethodField(
        help_text="JSON Schema of the `input` object this job type accepts."
    )

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_input_schema(self, job_type):
        return job_type.input_json_schema()


class JobSerializer(serializers.Serializer):
    """A job as it appears in lists."""

    id = serializers.UUIDField()
    workspace = serializers.UUIDField(source="workspace_id")
    submitter = serializers.CharField(source="submitter.get_username")
    job_type = serializers.CharField()
    authority_class = serializers.CharField()
    lane = serializers.CharField()
    priority = PriorityField()
    status = serializers.ChoiceField(choices=Status.choices)
    review_state = serializers.CharField(help_text="Empty until the model has finished.")
    input_summary = serializers.CharField()
    is_archived = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class FailureSerializer(serializers.Serializer):
    kind = serializers.CharField(source="failure_kind")
    reason = serializers.CharField(source="failure_reason")
    retryable = serializers.BooleanField(source="failure_retryable")
    has_partial_output = serializers.BooleanField()
    needs_human = serializers.BooleanField()


class OutputSerializer(serializers.Serializer):
    text = serializers.CharField()
    version = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class UsageSerializer(serializers.Serializer):
    input_tokens = serializers.IntegerField()
    cached_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    reasoning_tokens = serializers.IntegerField()
    cost = serializers.DecimalField(max_digits=14, decimal_places=8, help_text="US dollars.")


class AttemptSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    state = serializers.CharField()
    model = serializers.CharField()
    usage = UsageSerializer(source="*")
    error_kind = serializers.CharField()
    error_message = serializers.CharField()
    is_stale = serializers.BooleanField(help_text="Its result arrived after cancel or expiry.")
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class TimingsSerializer(serializers.Serializer):
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    provider_finished_at = serializers.DateTimeField(allow_null=True)
    reviewed_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(help_text="The deadline.")


class ToolCallSerializer(serializers.Serializer):
    call_id = serializers.CharField()
    name = serializers.CharField(help_text="The tool.")
    sentence = serializers.CharField(help_text="What the call does, in plain words.")
    state = serializers.ChoiceField(
        ["pending", "awaiting_approval", "running", "succeeded", "failed", "rejected", "timed_out"]
    )
    arguments = serializers.JSONField()
    output = serializers.CharField(help_text="What the tool returned (JSON text), when it did.")
    error = serializers.CharField(help_text="Why it failed; the model is told the same.")
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class RunStepSerializer(serializers.Serializer):
    number = serializers.IntegerField(help_text="The run's model turn that asked for the calls.")
    calls = ToolCallSerializer(many=True)


class JobDetailSerializer(JobSerializer):
    """One job with everything a client needs to act on it."""

    input = serializers.DictField(child=serializers.JSONField())
    attempt_count = serializers.IntegerField()
    attempt_limit = serializers.IntegerField()
    wait_reason = serializers.CharField()
    failure = serializers.SerializerMethodField()
    output = serializers.SerializerMethodField(
        help_text="The released output: set once the job is completed (after any review)."
    )
    usage = UsageSerializer(source="*", help_text="Summed over every attempt, failed ones too.")
    attempts = AttemptSerializer(many=True)
    steps = serializers.SerializerMethodField(
        help_text="A tool run's steps: the calls the model asked for and what each did."
    )
    timings = TimingsSerializer(source="*")
    actions = serializers.SerializerMethodField(
        help_text=(
            "What you may do to the job now, as the job page offers it: `cancel`, `retry` and "
            "`archive` (POST /api/v1/jobs/{id}/<action>)."
        )
    )

    @extend_schema_field(
        serializers.ListField(child=serializers.ChoiceField(["cancel", "retry", "archive"]))
    )
    def get_actions(self, job):
        return allowed_controls(job)

    @extend_schema_field(RunStepSerializer(many=True))
    def get_steps(self, job):
        return RunStepSerializer(tool_steps(job), many=True).data

    @extend_schema_field(FailureSerializer(allow_null=True))
    def get_failure(self, job):
        return FailureSerializer(job).data if job.failure_kind else None

    @extend_schema_field(OutputSerializer(allow_null=True))
    def get_output(self, job):
        artifact = released_output(job)
        return OutputSerializer(artifact).data if artifact else None


class JobEventSerializer(serializers.Serializer):
    """One timeline event: the same shape as each Server-Sent Event's data."""

    id = serializers.IntegerField(help_text="Also the cursor.")
    kind = serializers.CharField()
    from_status = serializers.CharField()
    to_status = serializers.CharField()
    message = serializers.CharField()
    actor = serializers.CharField(help_text="A username or a system:… label.")
    created_at = serializers.DateTimeField()
    data = serializers.DictField(child=serializers.JSONField())

    def to_representation(self, instance):
        return event_payload(instance, withhold_draft=self.context.get("withhold_draft", False))


class JobEventPageSerializer(serializers.Serializer):
    results = JobEventSerializer(many=True)
    next_cursor = serializers.IntegerField(
        help_text="Pass as `after` to read on (the last event's id; your `after` if none)."
    )
    has_more = serializers.BooleanField(help_text="More events exist right now past this page.")
