from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from jobs import api as jobs_api
from jobs.admin_views import job_types_view
from jobs.webhooks import openai_webhook
from review import api as review_api

# The admin's app list stays on its home page and in the breadcrumbs: beside the filters, a
# second sidebar left the job list too narrow for its columns at 1280 px.
admin.site.enable_nav_sidebar = False

api_v1 = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("job-types", jobs_api.JobTypesView.as_view(), name="api-job-types"),
    path("jobs", jobs_api.JobListView.as_view(), name="api-jobs"),
    path("jobs/<uuid:job_id>", jobs_api.JobDetailView.as_view(), name="api-job"),
    path("jobs/<uuid:job_id>/cancel", jobs_api.JobCancelView.as_view(), name="api-job-cancel"),
    path("jobs/<uuid:job_id>/retry", jobs_api.JobRetryView.as_view(), name="api-job-retry"),
    path("jobs/<uuid:job_id>/archive", jobs_api.JobArchiveView.as_view(), name="api-job-archive"),
    path("jobs/<uuid:job_id>/events", jobs_api.JobEventsView.as_view(), name="api-job-events"),
    path(
        "jobs/<uuid:job_id>/events/stream",
        jobs_api.JobEventStreamView.as_view(),
        name="api-job-event-stream",
    ),
]

api_v1 += [
    path("review/queue", review_api.ReviewQueueView.as_view(), name="api-review-queue"),
    *[
        path(f"review/<uuid:job_id>/{action}", view.as_view(), name=f"api-review-{action}")
        for action, view in [
            ("claim", review_api.ClaimView),
            ("release-claim", review_api.ReleaseClaimView),
            ("edit", review_api.EditView),
            ("approve", review_api.ApproveView),
            ("reject", review_api.RejectView),
            ("send-back", review_api.SendBackView),
            ("escalate", review_api.EscalateView),
        ]
    ],
    *[
        path(
            f"review/<uuid:job_id>/tool-calls/<str:call_id>/{action}",
            view.as_view(),
            name=f"api-review-tool-call-{action}",
        )
        for action, view in [
            ("approve", review_api.ApproveToolCallView),
            ("reject", review_api.RejectToolCallView),
        ]
    ],
]

urlpatterns = [
    path("admin/job-types/", admin.site.admin_view(job_types_view), name="admin-job-types"),
    path("admin/", admin.site.urls),
    path("webhooks/openai/", openai_webhook, name="openai-webhook"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("review/", include("review.urls")),
    path("ops/", include("ops.urls")),
    path("", include("notifications.urls")),
    path("api/v1/", include(api_v1)),
    path("", include("accounts.urls")),
    path("", include("jobs.urls")),
]

# One answer for failures around the views too (no database connection: 503; too large: 413).
handler400 = "config.failures.bad_request"
handler500 = "config.failures.server_error"
