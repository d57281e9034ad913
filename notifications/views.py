"""Notification centre, notification settings, and the workspace admin's webhook pages."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from . import services
from .errors import NotificationError
from .forms import EndpointForm
from .models import Channel, Topic, WebhookDelivery, WebhookEndpoint
from .selectors import (
    admin_workspaces,
    deliveries_for,
    notifications_for,
    preference_grid,
    unread_count,
)


@login_required
def notification_list(request):
    page = Paginator(notifications_for(request.user), 30).get_page(request.GET.get("page"))
    return render(request, "notifications/list.html", {"page": page})


@login_required
def open_notification(request, notification_id):
    """Mark the notification read and go to its job."""
    notification = services.mark_read(user=request.user, notification_id=notification_id)
    if notification is None:
        raise Http404("No such notification")
    if services.is_review_digest(notification):
        return redirect("review:queue")
    return redirect("job-detail", job_id=notification.job_id)


@login_required
@require_POST
def mark_read(request):
    if request.POST.get("all"):
        services.mark_all_read(user=request.user)
        messages.success(request, "All notifications are marked as read.")
    else:
        try:
            services.mark_read(user=request.user, notification_id=int(request.POST.get("id", "")))
        except ValueError:
            messages.error(request, "That notification could not be found.")
    return redirect("notification-list")


@login_required
def unread(request):
    """The header badge polls this."""
    return JsonResponse({"unread": unread_count(request.user)})


@login_required
def notification_settings(request):
    if request.method == "POST":
        enabled = {
            (channel, topic)
            for channel in Channel.values
            for topic in Topic.values
            if request.POST.get(f"{channel}:{topic}")
        }
        services.set_preferences(user=request.user, enabled=enabled)
        messages.success(request, "Your notification settings are saved.")
        return redirect("notification-settings")
    grid = preference_grid(request.user)
    rows = [
        (
            topic,
            label,
            [(ch, f"{ch}:{topic}", grid[(ch, topic)]) for ch in Channel.values],
        )
        for topic, label in Topic.choices
    ]
    return render(
        request, "notifications/settings.html", {"rows": rows, "channels": Channel.choices}
    )


# --- webhooks (workspace admins) -----------------------------------------------------------


def _admin_workspace(user, slug):
    return get_object_or_404(admin_workspaces(user), slug=slug)


@login_required
def webhooks_index(request):
    """Send an admin to their (first) workspace's webhook page."""
    workspace = admin_workspaces(request.user).first()
    if workspace is None:
        raise Http404("You don't manage any workspace's webhooks.")
    return redirect("webhooks", slug=workspace.slug)


NEW_SECRET_KEY = "webhook_secret_once"


@login_required
def webhooks(request, slug):
    workspace = _admin_workspace(request.user, slug)
    if request.method == "POST":
        form = EndpointForm(request.POST)
        if form.is_valid():
            try:
                endpoint = services.register_endpoint(
                    workspace=workspace,
                    actor=request.user,
                    url=form.cleaned_data["url"],
                    description=form.cleaned_data["description"],
                    topics=form.cleaned_data["topics"],
                )
            except NotificationError as error:
                form.add_error("url", error.message)
            else:
                # Shown once, on the next page only (kept server-side in the session, so a
                # reload neither re-posts the form nor shows the secret again).
                request.session[NEW_SECRET_KEY] = {
                    "id": str(endpoint.pk),
                    "secret": endpoint.secret,
                }
                return redirect("webhooks", slug=workspace.slug)
    else:
        form = EndpointForm()
    created = request.session.pop(NEW_SECRET_KEY, None)
    context = {
        "workspace": workspace,
        "workspaces": admin_workspaces(request.user),
        "endpoints": workspace.webhook_endpoints.all(),
        "deliveries": deliveries_for(workspace)[:10],
        "form": form,
        "created": created,
        "topic_labels": dict(Topic.choices),
    }
    return render(request, "notifications/webhooks.html", context)


@login_required
def delivery_log(request, slug):
    workspace = _admin_workspace(request.user, slug)
    deliveries = deliveries_for(workspace)
    state = request.GET.get("state", "")
    if state in WebhookDelivery.State.values:
        deliveries = deliveries.filter(state=state)
    page = Paginator(deliveries, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "notifications/deliveries.html",
        {
            "workspace": workspace,
            "page": page,
            "state": state,
            "states": WebhookDelivery.State.choices,
        },
    )


ENDPOINT_ACTIONS = {"test", "disable", "enable", "delete"}


@login_required
@require_POST
def endpoint_action(request, slug, endpoint_id, action):
    workspace = _admin_workspace(request.user, slug)
    endpoint = get_object_or_404(WebhookEndpoint, workspace=workspace, pk=endpoint_id)
    if action not in ENDPOINT_ACTIONS:
        raise Http404("No such action")
    try:
        if action == "test":
            services.send_test_event(endpoint=endpoint, actor=request.user)
            messages.success(request, "A test event is on its way; see the delivery log.")
        elif action == "delete":
            services.delete_endpoint(endpoint=endpoint, actor=request.user)
            messages.success(request, "The endpoint was removed.")
        else:
            services.set_endpoint_active(
                endpoint=endpoint, actor=request.user, active=action == "enable"
            )
            messages.success(request, f"The endpoint is {action}d.")
    except NotificationError as error:
        messages.error(request, error.message)
    return redirect("webhooks", slug=workspace.slug)


@login_required
@require_POST
def redeliver(request, slug, delivery_id):
    workspace = _admin_workspace(request.user, slug)
    delivery = get_object_or_404(deliveries_for(workspace), pk=delivery_id)
    try:
        services.redeliver(delivery=delivery, actor=request.user)
    except NotificationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "The delivery will be sent again.")
    return redirect("webhook-deliveries", slug=workspace.slug)
