from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from . import webhooks
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
    """The same address rules as ``services.register_endpoint``: a full http(s) URL, and no
    loopback, private or link-local target unless WEBHOOK_ALLOW_PRIVATE_TARGETS is on."""

    class Meta:
        model = WebhookEndpoint
        fields = ["workspace", "url", "description", "topics", "is_active", "created_by"]

    def clean_url(self):
        url = self.cleaned_data["url"]
        try:
            URLValidator(schemes=["http", "https"])(url)
        except ValidationError:
            raise ValidationError("Enter a full http:// or https:// address.") from None
        refused = webhooks.refusal(url, resolve=False)
        if refused:
            raise ValidationError(refused)
        return url


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["url", "workspace", "is_active", "created_at"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["event_type", "endpoint", "state", "attempts", "last_error", "next_attempt_at"]
    list_filter = ["state", "event_type"]
    raw_id_fields = ["endpoint", "event"]
