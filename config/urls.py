from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from jobs.admin_views import job_types_view
from jobs.webhooks import openai_webhook

urlpatterns = [
    path("admin/job-types/", admin.site.admin_view(job_types_view), name="admin-job-types"),
    path("admin/", admin.site.urls),
    path("webhooks/openai/", openai_webhook, name="openai-webhook"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("review/", include("review.urls")),
    path("", include("notifications.urls")),
    path("", include("jobs.urls")),
]
