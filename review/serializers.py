"""The REST API's shapes for the review queue and review actions."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.bodies import BodySerializer, QuerySerializer, WordsField
from jobs.job_types import AuthorityClass
from jobs.selectors import latest_text
from jobs.serializers import OutputSerializer, PriorityField

CLAIM_STATES = ("unclaimed", "mine", "others")
QUEUE_ORDERS = ("age", "priority")


class ReviewQueueQuerySerializer(QuerySerializer):
    job_type = WordsField(required=False, max_length=64)
    authority_class = serializers.ChoiceField(choices=AuthorityClass.choices, required=False)
    claim_state = serializers.ChoiceField(
        choices=CLAIM_STATES,
        required=False,
        help_text="unclaimed, claimed by you (mine) or by someone else (others).",
    )
    order = serializers.ChoiceField(choices=QUEUE_ORDERS, default="age")


class EditSerializer(BodySerializer):
    text = serializers.CharField(trim_whitespace=False, max_length=200_000)


class ApproveSerializer(BodySerializer):
    text = serializers.CharField(
        required=False,
        trim_whitespace=False,
        max_length=200_000,
        help_text="Optional last edit, saved as a new version before approving.",
    )


class ToolCallApproveSerializer(BodySerializer):
    arguments = serializers.DictField(
        required=False,
        # any JSON value, null included: the tool's own schema is the check (a 400 that names
        # the field when the arguments do not fit it)
        child=serializers.JSONField(allow_null=True),
        help_text="Your version of the call's arguments (checked against the tool's schema); "
        "the model's are kept. Leave out to approve the call as the model wrote it.",
    )


class ToolCallRejectSerializer(BodySerializer):
    reason = WordsField(max_length=2000, help_text="Goes back to the model as the call's output.")


class RejectSerializer(BodySerializer):
    reason = WordsField(max_length=2000, help_text="Shown to the submitter.")


class SendBackSerializer(BodySerializer):
    notes = WordsField(max_length=2000, help_text="Added to the next attempt's instructions.")


class EscalateSerializer(BodySerializer):
    note = WordsField(max_length=2000, help_text="What the admin should look at.")


class ClaimSerializer(serializers.Serializer):
    reviewer = serializers.CharField(source="reviewer.get_username")
    claimed_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()


def _live_claim(job):
    """The job's live claim: prefetched by ``review_queue`` (``live_claim_list``), else read."""
    claims = getattr(job, "live_claim_list", None)
    if claims is not None:
        return claims[0] if claims else None
    from review.selectors import live_claim_on

    return live_claim_on(job)


class ReviewQueueItemSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    workspace = serializers.UUIDField(source="workspace_id")
    submitter = serializers.CharField(source="submitter.get_username")
    job_type = serializers.CharField()
    authority_class = serializers.CharField()
    priority = PriorityField()
    status = serializers.CharField()
    review_state = serializers.CharField()
    input_summary = serializers.CharField()
    is_sensitive = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    provider_finished_at = serializers.DateTimeField(allow_null=True)
    claim = serializers.SerializerMethodField(help_text="The live claim, if anyone holds one.")

    @extend_schema_field(ClaimSerializer(allow_null=True))
    def get_claim(self, job):
        claim = _live_claim(job)
        return ClaimSerializer(claim).data if claim else None


class ReviewJobSerializer(ReviewQueueItemSerializer):
    """One draft as a reviewer sees it: the input and the current (newest) text version."""

    input = serializers.DictField(child=serializers.JSONField())
    draft = serializers.SerializerMethodField(help_text="The newest text version, if any.")

    @extend_schema_field(OutputSerializer(allow_null=True))
    def get_draft(self, job):
        artifact = latest_text(job)
        return OutputSerializer(artifact).data if artifact else None
