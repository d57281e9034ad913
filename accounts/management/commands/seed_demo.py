"""Create the demo workspace and its three people. Safe to run again: existing users are kept."""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Membership, Role, Workspace

DEMO_USERS = [
    # username, role, is_staff (Django admin access)
    ("submitter", Role.MEMBER, False),
    ("reviewer", Role.REVIEWER, False),
    ("admin", Role.ADMIN, True),
]


class Command(BaseCommand):
    help = "Create a demo workspace with a submitter, a reviewer and an admin; print new passwords."

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset-passwords",
            action="store_true",
            help="Give the demo users new passwords and print them.",
        )

    @transaction.atomic
    def handle(self, *args, reset_passwords=False, **options):
        workspace, _ = Workspace.objects.get_or_create(slug="demo", defaults={"name": "Demo"})
        User = get_user_model()
        printed = []
        for username, role, is_staff in DEMO_USERS:
            user, created = User.objects.get_or_create(
                username=username,
                defaults={"email": f"{username}@demo.steward.local", "is_staff": is_staff},
            )
            if is_staff and not user.is_superuser:
                user.is_staff = user.is_superuser = True
                user.save(update_fields=["is_staff", "is_superuser"])
            Membership.objects.update_or_create(
                user=user, workspace=workspace, defaults={"role": role}
            )
            if created or reset_passwords:
                password = secrets.token_urlsafe(9)
                user.set_password(password)
                user.save(update_fields=["password"])
                printed.append((username, role, password))
        if printed:
            self.stdout.write("Demo logins (shown once; run with --reset-passwords for new ones):")
            for username, role, password in printed:
                self.stdout.write(f"  {username:<10} {password:<14} ({role})")
        else:
            self.stdout.write(
                "Demo users already exist; run `manage.py seed_demo --reset-passwords` "
                "to print new passwords."
            )
