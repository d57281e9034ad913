"""Settings for the task workers (``manage.py run_workers``): the web settings, with the database
connections a forked worker needs.

``manage.py run_workers`` uses this module when ``DJANGO_SETTINGS_MODULE`` is unset, and refuses
to start under a module that is not built on it. The web settings underneath are
``STEWARD_WEB_SETTINGS`` (default ``config.settings``; ``config.production`` in production).

Web processes share a bounded psycopg pool on PostgreSQL (``DATABASE_POOL_SIZE``). Workers are
forked by django-q2 and a pool's threads and sockets do not survive a fork, so workers leave it
out and keep one persistent connection each instead (``WORKER_CONN_MAX_AGE`` seconds, checked
before reuse). django-q2 closes a connection past its age after every task: with the default age
of 0, each of the pump's email and webhook tasks opened a new connection, a fifth of an
idle-ish worker's CPU in P1. ``CONN_MAX_AGE`` in the environment overrides both.
"""

import copy
import importlib
import os

_web = importlib.import_module(os.environ.get("STEWARD_WEB_SETTINGS", "config.settings"))
globals().update({name: value for name, value in vars(_web).items() if name.isupper()})

IS_WORKER_SETTINGS = True
DATABASES = copy.deepcopy(_web.DATABASES)
if _web.IS_POSTGRES and "CONN_MAX_AGE" not in os.environ:
    DATABASES["default"].get("OPTIONS", {}).pop("pool", None)
    DATABASES["default"]["CONN_MAX_AGE"] = _web.WORKER_CONN_MAX_AGE
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
