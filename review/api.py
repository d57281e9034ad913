"""REST API for reviewers: the queue and one endpoint per review action.

Each view reads through ``review.selectors`` and acts through one ``review.services`` call; the
services check claims, four-eyes and roles and raise ``review.errors`` (each with its HTTP
``status``), which ``config.api.problem_exception_handler`` turns into problem details.
Only reviewers and admins may use these endpoints (403 for everyone else); a job outside the
caller's review workspaces is 404.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors import REVIEW_ROLES, workspace_ids_for
from config.api_schema import problems
from jobs.models import Job

from .serializers import (
    ApproveSerializer,
    EditSerializer,
    EscalateSerializer,
    RejectSerializer,
    ReviewJobSerializer,
    ReviewQueueItemSerializer,
    ReviewQueueQuerySerializer,
    SendBackSerializer,
    ToolCallApproveSerializer,
    ToolCallRejectSerializer,
)

JOB_ID = OpenApiParameter("job_id", OpenApiTypes.UUID, OpenApiParameter.PATH)
CALL_ID = OpenApiParameter("call_id", OpenApiTypes.STR, OpenApiParameter.PATH)


class IsReviewer(BasePermission):
    message = "Only reviewers and admins can use the review API."

    def has_permission(self, request, view):
        return workspace_ids_for(request.user, roles=REVIEW_ROLES).exists()


class QueuePagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 200


def reviewable_job(request, job_id):
    from .selectors import reviewable_job_for

    try:
        return reviewable_job_for(request.user, job_id)
    except Job.DoesNotExist:
        raise NotFound("There is no such draft in your review queue.") from None


@extend_schema(tags=["review"])
class ReviewQueueView(GenericAPIView):
    permission_classes = [IsAuthenticated, IsReviewer]
    pagination_class = QueuePagination
    serializer_class = ReviewQueueItemSerializer

    @extend_schema(
        operation_id="review_queue",
        summary="The review queue",
        description="Drafts waiting for a decision in the workspaces you review, oldest first.",
        parameters=[ReviewQueueQuerySerializer],
        responses={200: ReviewQueueItemSerializer(many=True), **problems(400, 403)},
    )
    def get(self, request):
        from .selectors import review_queue

        query = ReviewQueueQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        jobs = review_queue(request.user, **query.validated_data)
        page = self.paginate_queryset(jobs)
        return self.get_paginated_response(ReviewQueueItemSerializer(page, many=True).data)


class _ReviewActionView(APIView):
    """POST: validate the body, call one ``review.services`` function, return the draft."""

    permission_classes = [IsAuthenticated, IsReviewer]
    service_name = ""
    body_serializer = None

    def post(self, request, job_id, **path):
        from . import services

        arguments = dict(path)
        if self.body_serializer is not None:
            body = self.body_serializer(data=request.data)
            body.is_valid(raise_exception=True)
            arguments.update(body.validated_data)
        job = reviewable_job(request, job_id)
        getattr(services, self.service_name)(job=job, reviewer=request.user, **arguments)
        return Response(ReviewJobSerializer(reviewable_job(request, job_id)).data)


def _review_action(operation_id, summary, description, body=None):
    codes = (400, 403, 404, 409)
    return extend_schema_view(
        post=extend_schema(
            operation_id=operation_id,
            tags=["review"],
            parameters=[JOB_ID],
            summary=summary,
            description=description,
            request=body,
            responses={200: ReviewJobSerializer, **problems(*codes)},
        )
    )


@_review_action(
    "claim_draft",
    "Claim a draft",
    "Take the draft for a while so no one else works on it (claiming again renews it).",
)
class ClaimView(_ReviewActionView):
    service_name = "claim_draft"


@_review_action("release_claim", "Release your claim", "Give the draft back to the queue.")
class ReleaseClaimView(_ReviewActionView):
    service_name = "release_claim"


@_review_action(
    "edit_draft",
    "Edit a draft",
    "Save your text as the next version (earlier versions are kept). Needs your claim.",
    EditSerializer,
)
class EditView(_ReviewActionView):
    service_name = "edit_draft"
    body_serializer = EditSerializer


@_review_action(
    "approve_draft",
    "Approve a draft",
    "Approve the current version (or `text`, saved first). External effects need the "
    "policy's approver role and then run once. Needs your claim; never your own job.",
    ApproveSerializer,
)
class ApproveView(_ReviewActionView):
    service_name = "approve_draft"
    body_serializer = ApproveSerializer


@_review_action(
    "reject_draft",
    "Reject a draft",
    "The job fails (kind `review`) with your reason. Needs your claim.",
    RejectSerializer,
)
class RejectView(_ReviewActionView):
    service_name = "reject_draft"
    body_serializer = RejectSerializer


@_review_action(
    "send_back_draft",
    "Send a draft back",
    "Queue another attempt whose instructions carry your notes. Needs your claim.",
    SendBackSerializer,
)
class SendBackView(_ReviewActionView):
    service_name = "send_back"
    body_serializer = SendBackSerializer


@_review_action(
    "escalate_draft",
    "Escalate a draft",
    "Hand the draft to the workspace's admins with a note; releases your claim.",
    EscalateSerializer,
)
class EscalateView(_ReviewActionView):
    service_name = "escalate"
    body_serializer = EscalateSerializer


def _tool_call_action(operation_id, summary, description, body):
    return extend_schema_view(
        post=extend_schema(
            operation_id=operation_id,
            tags=["review"],
            parameters=[JOB_ID, CALL_ID],
            summary=summary,
            description=description,
            request=body,
            responses={200: ReviewJobSerializer, **problems(400, 403, 404, 409)},
        )
    )


@_tool_call_action(
    "approve_tool_call",
    "Approve a tool call",
    "Approve a call a tool run waits on (an external effect), as the model wrote it or with "
    "your `arguments`; it then runs once and the run goes on. Needs the tool's approver role "
    "and your claim; never your own job.",
    ToolCallApproveSerializer,
)
class ApproveToolCallView(_ReviewActionView):
    service_name = "approve_tool_call"
    body_serializer = ToolCallApproveSerializer


@_tool_call_action(
    "reject_tool_call",
    "Reject a tool call",
    "The call does not run; your `reason` goes back to the model as its output and the run "
    "goes on. Needs your claim.",
    ToolCallRejectSerializer,
)
class RejectToolCallView(_ReviewActionView):
    service_name = "reject_tool_call"
    body_serializer = ToolCallRejectSerializer
