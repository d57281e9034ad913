from django.urls import path

from . import views
from .views import ACTIONS

app_name = "review"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("bulk-approve/", views.bulk_approve, name="bulk-approve"),
    path("<uuid:job_id>/", views.detail, name="detail"),
    *[path(f"<uuid:job_id>/{name}/", views.act, {"action": name}, name=name) for name in ACTIONS],
]
