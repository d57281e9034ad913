"""ASGI entry point: uvicorn serves Steward, so long-lived event streams don't hold a worker."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_asgi_application()

from django.core.exceptions import ImproperlyConfigured  # noqa: E402

from config.bodies import BodyLimitMiddleware  # noqa: E402  (needs the settings loaded)
from jobs.checks import webhook_secret_problem  # noqa: E402

# uvicorn runs no system checks: the one that guards every request is run here, so a server
# that would accept forged provider webhooks refuses to start.
if problem := webhook_secret_problem():
    raise ImproperlyConfigured(problem)

application = BodyLimitMiddleware(django_application)
