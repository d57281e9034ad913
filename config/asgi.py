"""ASGI entry point: uvicorn serves Steward, so long-lived event streams don't hold a worker."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_asgi_application()

from config.bodies import BodyLimitMiddleware  # noqa: E402  (needs the settings loaded)

application = BodyLimitMiddleware(django_application)
