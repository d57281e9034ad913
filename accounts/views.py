"""The API tokens settings page: create a token (its secret is shown once) and revoke tokens.

Creating answers with a redirect (post/redirect/get), so reloading the page never creates a
second token; the new secret rides along in the session and is shown on the next page once."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from . import services
from .models import ApiToken, Role
from .selectors import api_tokens_for, memberships_of

NEW_SECRET = "new_api_token_secret"


@login_required
def landing(request):
    """Where logging in leads: the review queue for people whose only role is reviewing (they
    do not submit jobs, so "My jobs" would be empty), "My jobs" for everyone else."""
    if {m.role for m in memberships_of(request.user)} == {Role.REVIEWER}:
        return redirect("review:queue")
    return redirect("home")


@login_required
def api_tokens(request):
    error = None
    if request.method == "POST":
        try:
            _, secret = services.create_api_token(
                user=request.user, name=request.POST.get("name", "")
            )
        except services.TokenError as exc:
            error = exc.message
        else:
            request.session[NEW_SECRET] = secret
            return redirect("api-tokens")
    new_secret = request.session.pop(NEW_SECRET, None)
    context = {
        "tokens": api_tokens_for(request.user),
        "new_secret": new_secret,
        "error": error,
        "name": request.POST.get("name", "") if error else "",
    }
    return render(request, "accounts/api_tokens.html", context, status=400 if error else 200)


@login_required
@require_http_methods(["GET", "POST"])
def revoke_api_token(request, token_id):
    """GET asks for confirmation (the page's dialog does this without a round trip)."""
    try:
        token = api_tokens_for(request.user).get(pk=token_id)
    except ApiToken.DoesNotExist:
        raise Http404("No such token") from None
    if request.method != "POST":
        return render(request, "accounts/revoke_token.html", {"token": token})
    services.revoke_api_token(token=token)
    messages.success(request, f"The token “{token.name}” is revoked; it no longer works.")
    return redirect("api-tokens")
