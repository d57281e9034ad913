from django.urls import path

from . import views

urlpatterns = [
    path("notifications/", views.notification_list, name="notification-list"),
    path("notifications/read/", views.mark_read, name="notification-mark-read"),
    path("notifications/unread.json", views.unread, name="notification-unread"),
    path("notifications/<int:notification_id>/", views.open_notification, name="notification-open"),
    path("settings/notifications/", views.notification_settings, name="notification-settings"),
    path("settings/webhooks/", views.webhooks_index, name="webhooks-index"),
    path("workspaces/<slug:slug>/webhooks/", views.webhooks, name="webhooks"),
    path(
        "workspaces/<slug:slug>/webhooks/deliveries/",
        views.delivery_log,
        name="webhook-deliveries",
    ),
    path(
        "workspaces/<slug:slug>/webhooks/deliveries/<int:delivery_id>/redeliver/",
        views.redeliver,
        name="webhook-redeliver",
    ),
    path(
        "workspaces/<slug:slug>/webhooks/<uuid:endpoint_id>/<str:action>/",
        views.endpoint_action,
        name="webhook-endpoint-action",
    ),
]
