"""Job reads never cross workspaces; inside one, members see their own jobs, admins all."""

import pytest
from django.core.management import call_command

from accounts.models import Membership, Role
from jobs.models import Job
from jobs.selectors import job_for, jobs_in_workspaces_of, jobs_visible_to
from tests.factories import JobFactory, WorkspaceFactory, member_of


@pytest.fixture
def two_workspaces(db):
    a, b = WorkspaceFactory(), WorkspaceFactory()
    jobs_a = JobFactory.create_batch(3, workspace=a)
    jobs_b = JobFactory.create_batch(2, workspace=b)
    return a, b, jobs_a, jobs_b


def test_workspace_scope_holds_only_own_workspace_jobs(two_workspaces):
    a, b, jobs_a, jobs_b = two_workspaces
    admin_a = member_of(a, role=Role.ADMIN)
    assert set(jobs_in_workspaces_of(admin_a)) == set(jobs_a)
    assert set(jobs_visible_to(admin_a)) == set(jobs_a)
    with pytest.raises(Job.DoesNotExist):
        job_for(admin_a, jobs_b[0].pk)


def test_member_sees_only_their_own_jobs(two_workspaces):
    a, _, jobs_a, _ = two_workspaces
    mine = JobFactory(workspace=a, submitter=member_of(a))
    assert list(jobs_visible_to(mine.submitter)) == [mine]
    with pytest.raises(Job.DoesNotExist):
        job_for(mine.submitter, jobs_a[0].pk)


def test_user_in_two_workspaces_sees_both_but_no_third(two_workspaces):
    a, b, jobs_a, jobs_b = two_workspaces
    third = JobFactory(workspace=WorkspaceFactory())
    user = member_of(a, role=Role.ADMIN)
    Membership.objects.create(user=user, workspace=b, role=Role.ADMIN)
    visible = set(jobs_visible_to(user))
    assert visible == set(jobs_a) | set(jobs_b)
    assert third not in visible


def test_anonymous_sees_nothing(two_workspaces):
    from django.contrib.auth.models import AnonymousUser

    assert not jobs_in_workspaces_of(AnonymousUser()).exists()


def test_seed_demo_creates_three_roles_and_prints_passwords_once(db, capsys):
    call_command("seed_demo")
    first = capsys.readouterr().out
    assert "submitter" in first and "reviewer" in first and "admin" in first
    roles = dict(Membership.objects.values_list("user__username", "role"))
    assert roles == {"submitter": "member", "reviewer": "reviewer", "admin": "admin"}
    call_command("seed_demo")
    assert "already exist" in capsys.readouterr().out
