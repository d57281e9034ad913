from django.urls import path

from . import views

app_name = "ops"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("export/<slug:panel>.csv", views.export_csv, name="export"),
    path("failures/<slug:kind>/", views.failures, name="failures"),
    path("dispatch/", views.dispatch_control, name="dispatch"),
    path("retry-failures/", views.retry_failures, name="retry-failures"),
]
