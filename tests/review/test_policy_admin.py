"""A review policy edited in Django admin leaves an audit record of who changed what."""

from datetime import timedelta

import pytest
from django.test import Client

from review.models import ReviewPolicy, ReviewPolicyChange
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator():
    return UserFactory(is_staff=True, is_superuser=True, username="olga")


@pytest.fixture
def admin_client(operator):
    client = Client()
    client.force_login(operator)
    return client


def _form(**fields):
    return {
        "job_type": "tag_ticket",
        "sample_rate": "",
        "approver_role": "",
        "review_sla": "",
        "review_sensitive_input": "unknown",
        **fields,
    }


def test_each_policy_change_is_recorded_with_before_and_after(admin_client, operator):
    admin_client.post("/admin/review/reviewpolicy/add/", _form(sample_rate="0.5"))
    policy = ReviewPolicy.objects.get(job_type="tag_ticket")
    url = f"/admin/review/reviewpolicy/{policy.pk}/change/"
    admin_client.post(url, _form(sample_rate="0.1", review_sla="01:00:00"))
    admin_client.post(url, _form(sample_rate="0.1", review_sla="01:00:00"))  # no change
    admin_client.post(f"/admin/review/reviewpolicy/{policy.pk}/delete/", {"post": "yes"})

    changes = list(ReviewPolicyChange.objects.order_by("id"))
    assert [c.kind for c in changes] == ["created", "changed", "deleted"]
    assert all(c.changed_by == operator and c.job_type == "tag_ticket" for c in changes)
    assert changes[0].before == {}
    assert changes[0].after["sample_rate"] == 0.5
    assert changes[1].before["sample_rate"] == 0.5
    assert changes[1].after["sample_rate"] == 0.1
    assert changes[1].after["review_sla"] == timedelta(hours=1).total_seconds()
    assert changes[2].after == {}
    assert not ReviewPolicy.objects.exists()


def test_the_change_history_cannot_be_edited_in_admin(admin_client):
    assert admin_client.get("/admin/review/reviewpolicychange/").status_code == 200
    assert admin_client.get("/admin/review/reviewpolicychange/add/").status_code == 403
