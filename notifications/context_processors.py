from .selectors import unread_count


def notifications(request):
    """The header's unread badge (one count query per page)."""
    return {"unread_notifications": unread_count(getattr(request, "user", None))}
