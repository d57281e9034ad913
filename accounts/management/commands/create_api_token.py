"""Create a personal API token for a user and print its secret (for scripts and CI)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.services import TokenError, create_api_token


class Command(BaseCommand):
    help = "Create an API token for USERNAME and print the secret (shown only this once)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="command line")

    def handle(self, *args, username, name, **options):
        try:
            user = get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"There is no user called {username!r}.") from None
        try:
            _, secret = create_api_token(user=user, name=name)
        except TokenError as error:
            raise CommandError(error.message) from None
        self.stdout.write(secret)
