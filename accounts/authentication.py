"""``Authorization: Bearer <token>`` for the REST API (session auth also works for the browser)."""

from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from .selectors import active_token_for_secret
from .services import record_token_use


class BearerTokenAuthentication(BaseAuthentication):
    """Authenticates a personal API token; ``request.auth`` is the ``ApiToken``.

    A missing header leaves the request anonymous (the permission check answers 401); a
    malformed, unknown or revoked token is a 401 at once.
    """

    keyword = b"bearer"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise AuthenticationFailed("Send the header as `Authorization: Bearer <token>`.")
        try:
            secret = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed("This API token is not valid or has been revoked.") from None
        token = active_token_for_secret(secret)
        if token is None or not token.user.is_active:
            raise AuthenticationFailed("This API token is not valid or has been revoked.")
        record_token_use(token=token)
        return token.user, token

    def authenticate_header(self, request):
        return 'Bearer realm="api"'
