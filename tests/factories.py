"""Factories for the tests: plain rows, no JSON fixtures."""

from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts.models import Membership, Role, Workspace
from jobs.models import Job, Status


class WorkspaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workspace

    name = factory.Sequence(lambda n: f"Workspace {n}")
    slug = factory.Sequence(lambda n: f"ws-{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.test")
    password = factory.django.Password("pw-for-tests-1")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    workspace = factory.SubFactory(WorkspaceFactory)
    role = Role.MEMBER


def member_of(workspace, role=Role.MEMBER, **user_fields):
    """A new user with ``role`` in ``workspace``."""
    user = UserFactory(**user_fields)
    MembershipFactory(user=user, workspace=workspace, role=role)
    return user


class JobFactory(factory.django.DjangoModelFactory):
    """A job row in any status, for setting up a state (real submissions go through the service)."""

    class Meta:
        model = Job

    workspace = factory.SubFactory(WorkspaceFactory)
    submitter = factory.LazyAttribute(lambda job: member_of(job.workspace))
    job_type = "summarize_document"
    authority_class = "read_only"
    lane = "background"
    model = "gpt-5-mini"
    input = factory.LazyFunction(lambda: {"title": "Quarterly report", "document": "Text."})
    input_summary = "Quarterly report"
    status = Status.QUEUED
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=1))
    attempt_limit = 3
