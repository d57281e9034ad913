import pytest

from accounts.models import Role
from tests.factories import member_of
from tests.review.drafts import make_draft


@pytest.fixture
def reviewer(workspace):
    return member_of(workspace, Role.REVIEWER, first_name="Rita")


@pytest.fixture
def other_reviewer(workspace):
    return member_of(workspace, Role.REVIEWER, first_name="Otto")


@pytest.fixture
def admin(workspace):
    return member_of(workspace, Role.ADMIN, first_name="Ada")


@pytest.fixture
def draft(workspace, submitter):
    """A support reply waiting for review, made through the real services."""
    return make_draft(workspace=workspace, submitter=submitter)
