"""Production settings: everything in ``settings`` plus the hardening ``check --deploy`` asks for.

Use with ``DJANGO_SETTINGS_MODULE=config.production``; ``SECRET_KEY`` and ``ALLOWED_HOSTS`` must
come from the environment.
"""

from .settings import *  # noqa: F403
from .settings import env

DEBUG = False
SECRET_KEY = env("SECRET_KEY")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
# No demo default here: with OPENAI_WEBHOOKS_ENABLED on, the system check steward.E001 fails
# without a secret of your own (and config/asgi.py refuses to serve).
OPENAI_WEBHOOK_SECRET = env("OPENAI_WEBHOOK_SECRET", default="")

# Hashed file names, so browsers may cache static files for ever (run collectstatic on deploy).
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
