"""Admin writes go through the same rules as the pages: a webhook endpoint added in Django
admin meets the address check, and a token is revoked through the service."""

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import ApiToken
from accounts.services import create_api_token
from notifications.models import WebhookEndpoint
from tests.factories import UserFactory


@pytest.fixture
def superuser(db):
    user = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000/hook", "http://169.254.169.254/latest", "ftp://example.com/x"]
)
def test_admin_refuses_an_endpoint_the_pages_would_refuse(superuser, workspace, url):
    response = superuser.post(
        "/admin/notifications/webhookendpoint/add/",
        {"workspace": workspace.pk, "url": url, "topics": "[]", "is_active": "on"},
    )
    assert response.status_code == 200  # the form again, with the error
    assert not WebhookEndpoint.objects.exists()


def test_admin_refuses_unknown_topics(superuser, workspace):
    response = superuser.post(
        "/admin/notifications/webhookendpoint/add/",
        {"workspace": workspace.pk, "url": "https://hooks.example.com/x", "topics": '["nope"]'},
    )
    assert response.status_code == 200
    assert b"Unknown events: nope." in response.content
    assert not WebhookEndpoint.objects.exists()


def test_admin_adds_an_endpoint_on_a_public_address(superuser, workspace):
    response = superuser.post(
        "/admin/notifications/webhookendpoint/add/",
        {"workspace": workspace.pk, "url": "https://hooks.example.com/x", "topics": "[]"},
    )
    assert response.status_code == 302
    assert WebhookEndpoint.objects.get().url == "https://hooks.example.com/x"


def test_admin_revokes_tokens_through_the_service_and_cannot_unrevoke_them(superuser, member):
    token, _ = create_api_token(user=member, name="laptop")
    response = superuser.post(
        "/admin/accounts/apitoken/",
        {"action": "revoke", "_selected_action": [token.pk]},
    )
    assert response.status_code == 302
    revoked_at = ApiToken.objects.get(pk=token.pk).revoked_at
    assert revoked_at is not None and revoked_at <= timezone.now()
    superuser.post(f"/admin/accounts/apitoken/{token.pk}/change/", {"revoked_at": ""})
    assert ApiToken.objects.get(pk=token.pk).revoked_at == revoked_at
