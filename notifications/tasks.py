"""django-q2 entry points of the notifications app: take IDs, call services."""

from . import services


def send_job_email(event_id, user_id):
    """Email one person about one job event."""
    return services.send_job_email(event_id=event_id, user_id=user_id)


def deliver_webhook(delivery_id):
    """Attempt one due webhook delivery; a failure schedules the next attempt with backoff."""
    delivery = services.attempt_delivery(delivery_id=delivery_id)
    return delivery.state if delivery else None


def retry_due_deliveries():
    """Safety net (schedule it every minute): attempt every delivery whose time has come."""
    ids = services.due_delivery_ids()
    for delivery_id in ids:
        services.attempt_delivery(delivery_id=delivery_id)
    return len(ids)
