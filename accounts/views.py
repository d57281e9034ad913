"""The API tokens settings page: create a token (its secret is shown once) and revoke tokens."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from . import services
from .models import ApiToken
from .selectors import api_tokens_for


@login_required
def api_tokens(request):
    new_secret, error = None, None
    if request.method == "POST":
        try:
            _, new_secret = services.create_api_token(
                user=request.user, name=request.POST.get("name", "")
            )
        except services.TokenError as exc:
            error = exc.message
    context = {
        "tokens": api_tokens_for(request.user),
        "new_secret": new_secret,
        "error": error,
        "name": request.POST.get("name", "") if error else "",
    }
    return render(request, "accounts/api_tokens.html", context, status=400 if error else 200)


@login_required
@require_POST
def revoke_api_token(request, token_id):
    try:
        token = api_tokens_for(request.user).get(pk=token_id)
    except ApiToken.DoesNotExist:
        raise Http404("No such token") from None
    services.revoke_api_token(token=token)
    messages.success(request, f"The token “{token.name}” is revoked; it no longer works.")
    return redirect("api-tokens")
