from django import forms
from django.contrib import admin

from . import services
from .models import Notification, NotificationPreference, WebhookDelivery, WebhookEndpoint


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["title", "user", "topic", "created_at", "read_at"]
    list_filter = ["topic"]
    raw_id_fields = ["user", "job", "event"]


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(admin.ModelAdmin):
    list_display = ["user", "channel", "topic", "enabled"]


class WebhookEndpointForm(forms.ModelForm):
    """The rules the webhooks page applies (``services.endpoint_problem``): a full http(s)
    address, no loopback, private or link-local target unless WEBHOOK_ALLOW_PRIVATE_TARGETS is
    on, and known topics only."""

    class Meta:
        model = WebhookEndpoint
        fields = ["workspace", "url", "description", "topics", "is_active", "created_by"]

    def clean(self):
        cleaned = super().clean()
        url, topics = cleaned.get("url"), cleaned.get("topics") or []
        if url is not None:
            problem = services.endpoint_problem(url=url, topics=topics)
            if problem:
                self.add_error("topics" if problem.startswith("Unknown events") else "url", problem)
        return cleaned


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["url", "workspace", "is_active", "created_at"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["event_type", "endpoint", "state", "attempts", "last_error", "next_attempt_at"]
    list_filter = ["state", "event_type"]
    raw_id_fields = ["endpoint", "event"]
