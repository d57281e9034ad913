"""Writes about people: API tokens. Each function runs in one transaction."""

import secrets
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .models import ApiToken

TOKEN_PREFIX = "stw_"
# Recording every request's use would write on every API call; a minute is precise enough.
LAST_USED_PRECISION = timedelta(minutes=1)


class TokenError(Exception):
    def __init__(self, message):
        super().__init__(message)
        self.message = message


@transaction.atomic
def create_api_token(*, user, name):
    """Create a token for ``user``; returns ``(token, secret)``. The secret is never stored."""
    name = (name or "").strip()
    if not name:
        raise TokenError("Give the token a name, so you can tell it apart later.")
    if len(name) > 100:
        raise TokenError("Keep the name under 100 characters.")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name, prefix=secret[:8], token_hash=ApiToken.hash_secret(secret)
    )
    return token, secret


@transaction.atomic
def revoke_api_token(*, token):
    """Revoke a token from now on. Idempotent: revoking twice keeps the first time."""
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    token.refresh_from_db()
    return token


def record_token_use(*, token):
    """Note that ``token`` was used now (at most one write a minute per token)."""
    now = timezone.now()
    ApiToken.objects.filter(pk=token.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_PRECISION)
    ).update(last_used_at=now)
