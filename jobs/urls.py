from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("jobs/", views.home, name="job-list"),
    path("jobs/new/", views.new_job, name="job-new"),
    path("jobs/new/<str:job_type>/", views.submit, name="job-submit"),
    path("jobs/<uuid:job_id>/", views.job_detail, name="job-detail"),
    path("jobs/<uuid:job_id>/events/", views.job_events, name="job-events"),
    path("jobs/<uuid:job_id>/<str:action>/", views.job_action, name="job-action"),
]
