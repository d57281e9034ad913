"""P4's baseline: a bare DRF view that inserts one job row per POST. Bench-only urlconf
(``bench.p4_settings``); never part of Steward's URLs.

No authentication, permission or throttle classes and no serializer: it reads the body,
inserts a ``jobs_job`` row with the fields the table requires, and answers 201 with the id.
The workspace and submitter come from ``BENCH_WORKSPACE_ID`` / ``BENCH_USER_ID``.
"""

import os
from datetime import timedelta

from django.urls import path
from django.utils import timezone
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs.models import Job


class InsertJobView(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = ()

    def post(self, request):
        job = Job.objects.create(
            workspace_id=os.environ["BENCH_WORKSPACE_ID"],
            submitter_id=os.environ["BENCH_USER_ID"],
            job_type=request.data["job_type"],
            authority_class="read_only",
            lane="background",
            model="gpt-5-mini",
            input=request.data["input"],
            expires_at=timezone.now() + timedelta(minutes=30),
        )
        return Response({"id": str(job.pk)}, status=201)


urlpatterns = [path("bench/jobs", InsertJobView.as_view())]
