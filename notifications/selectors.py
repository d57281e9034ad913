"""Reads for notification pages and the header badge."""

from accounts.models import Role, Workspace
from accounts.selectors import workspace_ids_for

from .models import DEFAULTS, Channel, Notification, NotificationPreference, Topic, WebhookDelivery


def unread_count(user):
    if not getattr(user, "is_authenticated", False):
        return 0
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def notifications_for(user):
    return Notification.objects.filter(user=user).select_related("job")


def preference_grid(user):
    """``{(channel, topic): enabled}`` for every channel and topic, defaults filled in."""
    grid = {(c, t): t in DEFAULTS[c] for c in Channel.values for t in Topic.values}
    for channel, topic, enabled in NotificationPreference.objects.filter(user=user).values_list(
        "channel", "topic", "enabled"
    ):
        grid[(channel, topic)] = enabled
    return grid


def choices_for(user_ids):
    """The stored notification choices of these users: ``(user id, channel, topic) -> on``."""
    rows = NotificationPreference.objects.filter(user_id__in=user_ids)
    return {
        (user_id, channel, topic): enabled
        for user_id, channel, topic, enabled in rows.values_list(
            "user_id", "channel", "topic", "enabled"
        )
    }


def wants(user, channel, topic, choices=None):
    """Whether ``user`` wants ``topic`` on ``channel`` (their choice, else the default).
    ``choices`` is ``choices_for`` of a batch's users, read once for all of them."""
    if choices is None:
        choices = choices_for([user.pk])
    choice = choices.get((user.pk, channel, topic))
    return topic in DEFAULTS[channel] if choice is None else choice


def admin_workspaces(user):
    """Workspaces whose webhooks ``user`` may manage."""
    return Workspace.objects.filter(id__in=workspace_ids_for(user, roles=[Role.ADMIN]))


def deliveries_for(workspace):
    return WebhookDelivery.objects.filter(endpoint__workspace=workspace).select_related(
        "endpoint", "event__job"
    )
