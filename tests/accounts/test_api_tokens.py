"""Personal API tokens: stored hashed, shown once, revocable from the settings page."""

import hashlib

import pytest
from django.test import Client

from accounts.models import ApiToken
from accounts.services import TokenError, create_api_token, revoke_api_token
from tests.factories import UserFactory


@pytest.fixture
def logged_in(submitter):
    client = Client()
    client.force_login(submitter)
    return client


def test_token_secret_is_stored_only_as_its_sha256(submitter):
    token, secret = create_api_token(user=submitter, name="ci")
    assert secret.startswith("stw_") and len(secret) > 40
    stored = ApiToken.objects.get(pk=token.pk)
    assert stored.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in {stored.name, stored.prefix, stored.token_hash}
    assert stored.prefix == secret[:8]


def test_a_token_needs_a_name(submitter):
    with pytest.raises(TokenError, match="name"):
        create_api_token(user=submitter, name="  ")


def test_revoking_twice_keeps_the_first_revocation_time(submitter):
    token, _ = create_api_token(user=submitter, name="ci")
    first = revoke_api_token(token=token).revoked_at
    assert revoke_api_token(token=token).revoked_at == first


def test_settings_page_shows_a_new_secret_once_and_never_again(logged_in, submitter):
    created = logged_in.post("/settings/tokens/", {"name": "nightly import"})
    assert created.status_code == 302  # post/redirect/get: a reload cannot create another
    response = logged_in.get(created["Location"])
    token = ApiToken.objects.get(user=submitter)
    secret = response.context["new_secret"]
    assert secret.startswith("stw_") and secret in response.content.decode()
    assert token.token_hash == ApiToken.hash_secret(secret)
    again = logged_in.get("/settings/tokens/").content.decode()
    assert "nightly import" in again and token.prefix in again and secret not in again


def test_reloading_after_creating_a_token_creates_no_second_one(logged_in, submitter):
    logged_in.post("/settings/tokens/", {"name": "nightly import"}, follow=True)
    logged_in.get("/settings/tokens/")  # the reload a person does after creating
    assert ApiToken.objects.filter(user=submitter).count() == 1


def test_revoking_asks_for_confirmation_first(logged_in, submitter):
    token, _ = create_api_token(user=submitter, name="cron")
    page = logged_in.get(f"/settings/tokens/{token.pk}/revoke/").content.decode()
    assert "Revoke “cron”?" in page and "stop working at once" in page
    token.refresh_from_db()
    assert token.revoked_at is None


def test_settings_page_rejects_a_token_without_a_name(logged_in, submitter):
    response = logged_in.post("/settings/tokens/", {"name": ""})
    assert response.status_code == 400
    assert "Give the token a name" in response.content.decode()
    assert not ApiToken.objects.filter(user=submitter).exists()


def test_settings_page_revokes_a_token(logged_in, submitter):
    token, secret = create_api_token(user=submitter, name="old laptop")
    response = logged_in.post(f"/settings/tokens/{token.pk}/revoke/", follow=True)
    assert "is revoked" in response.content.decode()
    token.refresh_from_db()
    assert token.revoked_at is not None
    api = Client(headers={"Authorization": f"Bearer {secret}"})
    assert api.get("/api/v1/jobs").status_code == 401


def test_nobody_can_revoke_someone_elses_token(logged_in):
    theirs, _ = create_api_token(user=UserFactory(), name="theirs")
    assert logged_in.post(f"/settings/tokens/{theirs.pk}/revoke/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_settings_page_needs_login(db):
    response = Client().get("/settings/tokens/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_create_api_token_command_prints_a_working_secret(submitter):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("create_api_token", submitter.username, "--name", "ci", stdout=out)
    secret = out.getvalue().strip()
    client = Client(headers={"Authorization": f"Bearer {secret}"})
    assert client.get("/api/v1/jobs").status_code == 200
    assert ApiToken.objects.get(user=submitter).name == "ci"


def test_create_api_token_command_refuses_an_unknown_user(db):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no user called"):
        call_command("create_api_token", "nobody")
