"""Steward settings, read from the environment (django-environ).

Everything has an embedded default so that a fresh clone runs with no configuration:
SQLite in WAL mode, django-q2's ORM broker and the bundled fake OpenAI server. Production
overrides live in ``config/production.py``, the task workers' in ``config/workers.py``, and the
tuning knobs (typed, with a default and a sentence each) in ``config/tuning.py``.
"""

import os
from decimal import Decimal
from pathlib import Path

import environ

from .tuning import load_tuning

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DATA_DIR = Path(env("STEWARD_DATA_DIR", default=str(BASE_DIR / "var")))
DATA_DIR.mkdir(parents=True, exist_ok=True)

TUNING = load_tuning(env)
globals().update(TUNING)  # POLL_BATCH, PUMP_SLOTS, … each a setting of its own

SECRET_KEY = env("SECRET_KEY", default="dev-only-insecure-key-change-me-in-production")
DEBUG = env.bool("DEBUG", default=True)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_q",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "jobs",
    "review",
    "notifications",
    "ops",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Under /api/: unhandled errors and Django's own error pages become problem details.
    "config.api.ApiProblemMiddleware",
    # No database connection free: 503 + Retry-After; a body too large: 413 (any path, any DEBUG).
    "config.failures.FailureMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Query strings and form posts with text that cannot be stored (NUL) are refused with 400.
    "config.bodies.FormTextMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.workspace_roles",
                "notifications.context_processors.notifications",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'steward.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside the one writer; IMMEDIATE takes the write lock at BEGIN so
    # two workers never deadlock upgrading a read lock; the timeout waits instead of failing.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not :memory:, so that qcluster processes started by tests share the database.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}
elif env.int("DATABASE_POOL_SIZE", default=8) and "CONN_MAX_AGE" not in os.environ:
    # Web processes share a bounded pool of connections (Django's psycopg pool): a burst of
    # requests waits up to DATABASE_POOL_TIMEOUT seconds for a free one, then gets 503 with
    # Retry-After (config.failures) instead of PostgreSQL's "too many clients". Size it so that
    # web processes × DATABASE_POOL_SIZE + task workers ≤ max_connections (README). Task
    # workers keep persistent connections of their own instead (config/workers.py).
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": env.int("DATABASE_POOL_SIZE", default=8),
        "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10.0),
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
IS_POSTGRES = DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Request bodies (config/bodies.py) -------------------------------------------------------
# The largest body Steward reads, JSON or form: 413 above it.
DATA_UPLOAD_MAX_MEMORY_SIZE = TUNING["REQUEST_MAX_BYTES"]
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000  # form fields per request: the bulk review form's ids
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE

# --- Cache and task broker -----------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="steward"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

Q_CLUSTER = {
    "name": env("Q_CLUSTER_NAME", default="steward"),
    "workers": env.int("Q_WORKERS", default=2),
    # A task's retry must be longer than its timeout, or a slow task runs twice.
    "timeout": 90,
    "retry": 120,
    "max_attempts": 3,
    "queue_limit": 50,
    "bulk": 10,
    "catch_up": False,
    "save_limit": 1000,
    "ack_failures": True,
    "poll": 0.2,
    "guard_cycle": 0.5,
    "label": "Task queue",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- Auth ----------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "landing"  # the review queue for reviewers (jobs.views.landing)
LOGOUT_REDIRECT_URL = "login"

# --- REST API (DRF; plumbing in config/api.py) ----------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["config.bodies.BoundedJSONParser"],
    # Per user (all their tokens and sessions) and per token; counted in the default cache,
    # which is Redis when REDIS_URL is set, so every web process shares the counts.
    "DEFAULT_THROTTLE_CLASSES": ["config.api.UserThrottle", "config.api.TokenThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user": TUNING["API_THROTTLE_USER"],
        "token": TUNING["API_THROTTLE_TOKEN"],
    },
    "EXCEPTION_HANDLER": "config.api.problem_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "config.api_schema.ProblemAutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Steward API",
    "DESCRIPTION": (
        "Submit, watch and control jobs, and work the review queue. Authenticate with a personal "
        "token from /settings/tokens/: `Authorization: Bearer stw_…`. Every error is RFC 9457 "
        "problem details (`application/problem+json`)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Offline docs: Swagger UI's files come from drf-spectacular-sidecar through whitenoise, and
    # the online validator badge (a call to swagger.io) is switched off.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.api_schema.publish_storable_text",
        "config.api_schema.close_request_bodies",
    ],
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every request otherwise
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_ROOT = DATA_DIR / "media"

# --- Email ---------------------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Steward <steward@localhost>")
# Where people reach Steward: links in emails and webhook payloads are built from it.
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000")

# --- Outgoing webhooks -----------------------------------------------------------------------
# Off: endpoints on loopback, private or link-local addresses are refused (SSRF). Turn on only
# where the receivers live on your own network.
WEBHOOK_ALLOW_PRIVATE_TARGETS = env.bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", default=False)

# --- Provider ------------------------------------------------------------------------------
# Real OpenAI only when a key is set; otherwise the bundled fake server (same code path).
OPENAI_API_KEY = env("OPENAI_API_KEY", default="")
FAKE_OPENAI_PORT = env.int("FAKE_OPENAI_PORT", default=8765)
OPENAI_BASE_URL = env(
    "OPENAI_BASE_URL",
    default="" if OPENAI_API_KEY else f"http://127.0.0.1:{FAKE_OPENAI_PORT}/v1",
)
# The demo's signing secret is the default only in DEBUG (make run); elsewhere the system check
# steward.E001 (jobs/checks.py) refuses to run with webhooks on and no secret of your own.
DEMO_OPENAI_WEBHOOK_SECRET = "whsec_c3Rld2FyZC1kZW1vLXdlYmhvb2stc2VjcmV0"  # published: demo only
OPENAI_WEBHOOK_SECRET = env(
    "OPENAI_WEBHOOK_SECRET", default=DEMO_OPENAI_WEBHOOK_SECRET if DEBUG else ""
)

# Prices in US dollars per one million tokens: (input, cached input, output). The version is
# stored on each attempt so that a later price change never rewrites old costs.
PRICE_TABLE_VERSION = "2026-11"
PRICE_TABLE = {
    "gpt-5-mini": (Decimal("0.25"), Decimal("0.025"), Decimal("2.00")),
    "gpt-5": (Decimal("1.25"), Decimal("0.125"), Decimal("10.00")),
    "gpt-4.1-mini": (Decimal("0.40"), Decimal("0.10"), Decimal("1.60")),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="WARNING")},
    # Django's own console handler (DEBUG only) would print each of its lines a second time
    # beside the root's: its records go to the root handler alone.
    "loggers": {"django": {"handlers": [], "level": "INFO", "propagate": True}},
}

# --- Execution -----------------------------------------------------------------------------
# Scenario knobs the bundled fake reads from request metadata; the demo makes jobs take a few
# seconds so a person can watch them move. Ignored with real OpenAI.
FAKE_OPENAI_DEFAULTS = {"fake_duration": TUNING["FAKE_OPENAI_DURATION"]}
# When provider webhooks reach Steward, polling is only a safety net and can be sparse.
OPENAI_WEBHOOKS_ENABLED = env.bool("OPENAI_WEBHOOKS_ENABLED", default=False)
