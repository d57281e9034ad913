"""Who may act on a draft is one rule: the console shows the controls exactly when the services
accept the action."""

import pytest

from accounts.models import Role
from review import services
from review.errors import ReviewError
from review.selectors import draft_access
from tests.factories import member_of
from tests.review.drafts import make_draft

pytestmark = pytest.mark.django_db


def _claim_accepted(job, user):
    try:
        services.claim_draft(job=job, reviewer=user)
    except ReviewError:
        return False
    return True


def _console_offers_work(client, job, user):
    client.force_login(user)
    response = client.get(f"/review/{job.pk}/")
    return response.status_code == 200 and 'data-shortcut="claim"' in response.text


@pytest.mark.parametrize(
    ("who", "escalated", "expected"),
    [
        ("reviewer", False, True),
        ("reviewer", True, False),  # escalated: admins only
        ("admin", True, True),
        ("submitting reviewer", False, False),  # four-eyes
        ("member", False, False),  # not a reviewer
    ],
)
def test_console_and_services_agree_on_who_may_act(
    client, workspace, submitter, admin, who, escalated, expected
):
    people = {
        "reviewer": member_of(workspace, Role.REVIEWER),
        "admin": admin,
        "member": submitter,
    }
    if who == "submitting reviewer":
        user = member_of(workspace, Role.REVIEWER)
        job = make_draft(workspace=workspace, submitter=user)
    else:
        user = people[who]
        job = make_draft(workspace=workspace, submitter=submitter)
    if escalated:
        colleague = member_of(workspace, Role.REVIEWER)
        services.claim_draft(job=job, reviewer=colleague)
        services.escalate(job=job, reviewer=colleague, note="Please check the refund wording.")
        job.refresh_from_db()
    assert draft_access(user, job).can_work is expected
    assert _console_offers_work(client, job, user) is expected
    assert _claim_accepted(job, user) is expected
