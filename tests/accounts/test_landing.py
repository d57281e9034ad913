"""Logging in leads each person to where their work is."""

import pytest
from django.test import Client

from accounts.models import Role
from tests.factories import member_of

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"


def _log_in(user):
    user.set_password(PASSWORD)
    user.save()
    client = Client()
    response = client.post(
        "/login/", {"username": user.username, "password": PASSWORD}, follow=True
    )
    return response.redirect_chain[-1][0]


@pytest.mark.parametrize(
    ("role", "lands_on"),
    [(Role.REVIEWER, "/review/"), (Role.MEMBER, "/"), (Role.ADMIN, "/")],
)
def test_after_login_each_role_lands_where_its_work_is(workspace, role, lands_on):
    assert _log_in(member_of(workspace, role)) == lands_on


def test_the_job_list_has_its_own_address(client, submitter):
    client.force_login(submitter)
    assert client.get("/jobs/").status_code == 200
