"""A read-only admin page listing the job types declared in code."""

from django.contrib import admin
from django.template.response import TemplateResponse

from .job_types import all_job_types


def job_types_view(request):
    context = {
        **admin.site.each_context(request),
        "title": "Job types",
        "job_types": all_job_types(),
    }
    return TemplateResponse(request, "admin/job_types.html", context)
