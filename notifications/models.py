"""What Steward tells people about their jobs: in-app notifications, each user's choices per
channel and event, and per-workspace outgoing webhooks with a log of every delivery."""

import base64
import secrets
import uuid

from django.conf import settings
from django.db import models

from accounts.models import Workspace
from jobs.models import Job, JobEvent


class Topic(models.TextChoices):
    """The job event kinds people can be told about (the ``JobEvent.kind`` values)."""

    COMPLETED = "completed", "A job finished"
    FAILED = "failed", "A job failed"
    NEEDS_REVIEW = "needs_review", "A job is waiting for review"
    APPROVED = "approved", "A reviewer approved a job"
    REJECTED = "rejected", "A reviewer rejected a job"
    SENT_BACK = "sent_back", "A reviewer sent a job back for another attempt"
    RELEASED = "released", "An approved action was carried out"
    CANCELED = "canceled", "A job was canceled by someone else"
    EXPIRED = "expired", "A job missed its deadline"


class Channel(models.TextChoices):
    IN_APP = "in_app", "In Steward"
    EMAIL = "email", "Email"


# What a person gets before they change anything: everything in the app, email only for
# outcomes they would otherwise have to come back and check.
# In the app, people are told by default only what needs them or ends their job: it finished,
# failed or missed its deadline, a reviewer decided, the approved action ran, someone else
# canceled it. That a draft waits for review or was sent back is on the job's timeline.
DEFAULTS = {
    Channel.IN_APP: set(Topic.values) - {Topic.NEEDS_REVIEW, Topic.SENT_BACK},
    Channel.EMAIL: {Topic.COMPLETED, Topic.FAILED, Topic.REJECTED, Topic.EXPIRED},
}


class Notification(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="notifications")
    event = models.ForeignKey(JobEvent, on_delete=models.CASCADE, related_name="notifications")
    topic = models.CharField(max_length=20, choices=Topic.choices)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One notification per person per event, however often the listener is called.
            models.UniqueConstraint(fields=["user", "event"], name="notification_once_per_event")
        ]
        indexes = [models.Index(fields=["user", "read_at"], name="notification_unread")]

    def __str__(self):
        return self.title

    @property
    def is_read(self):
        return self.read_at is not None


class NotificationPreference(models.Model):
    """One explicit choice; a missing row means the default in ``DEFAULTS``."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preferences"
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    topic = models.CharField(max_length=20, choices=Topic.choices)
    enabled = models.BooleanField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "channel", "topic"], name="preference_once_per_channel_topic"
            )
        ]

    def __str__(self):
        return f"{self.user} {self.channel} {self.topic}: {self.enabled}"


def new_webhook_secret():
    """A Standard Webhooks secret: ``whsec_`` + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


class WebhookEndpoint(models.Model):
    """Where a workspace wants to hear about its jobs. The secret signs every delivery; it is
    shown once when the endpoint is created (it has to be stored to sign with it)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    secret = models.CharField(max_length=80, default=new_webhook_secret)
    topics = models.JSONField(default=list, blank=True, help_text="Empty means every topic.")
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self):
        return self.url

    def wants(self, topic):
        return self.is_active and (not self.topics or topic in self.topics)


class WebhookDelivery(models.Model):
    """One message to one endpoint, with every attempt's outcome. Retries reuse ``message_id``
    so a receiver can drop duplicates."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        RETRYING = "retrying", "Retrying"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.ForeignKey(
        JobEvent, on_delete=models.CASCADE, null=True, blank=True, related_name="webhook_deliveries"
    )
    message_id = models.CharField(max_length=80, unique=True)
    event_type = models.CharField(max_length=40)
    payload = models.JSONField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=6)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "event"],
                condition=models.Q(event__isnull=False),
                name="delivery_once_per_endpoint_event",
            )
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(state__in=["pending", "retrying"]),
                name="delivery_due",
            )
        ]
        verbose_name_plural = "webhook deliveries"

    def __str__(self):
        return f"{self.event_type} → {self.endpoint}"
