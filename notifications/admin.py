from django.contrib import admin

from .models import Notification, NotificationPreference, WebhookDelivery, WebhookEndpoint


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["title", "user", "topic", "created_at", "read_at"]
    list_filter = ["topic"]
    raw_id_fields = ["user", "job", "event"]


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(admin.ModelAdmin):
    list_display = ["user", "channel", "topic", "enabled"]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ["url", "workspace", "is_active", "created_at"]
    exclude = ["secret"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["event_type", "endpoint", "state", "attempts", "last_error", "next_attempt_at"]
    list_filter = ["state", "event_type"]
    raw_id_fields = ["endpoint", "event"]
