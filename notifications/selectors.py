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


def wants(user, channel, topic):
    """Whether ``user`` wants ``topic`` on ``channel`` (their choice, else the default)."""
    choice = (
        NotificationPreference.objects.filter(user=user, channel=channel, topic=topic)
        .values_list("enabled", flat=True)
        .first()
    )
    return topic in DEFAULTS[channel] if choice is None else choice


def admin_workspaces(user):
    """Workspaces whose webhooks ``user`` may manage."""
    return Workspace.objects.filter(id__in=workspace_ids_for(user, roles=[Role.ADMIN]))


def deliveries_for(workspace):
    return WebhookDelivery.objects.filter(endpoint__workspace=workspace).select_related(
        "endpoint", "event__job"
    )
