"""Settings for the naive baseline's qcluster: Steward's worker settings, with a task timeout
long enough for a ten-minute job (otherwise django-q2 would kill each naive loop after 90 s)."""

from config.workers import *  # noqa: F403
from config.workers import Q_CLUSTER

Q_CLUSTER = {**Q_CLUSTER, "timeout": 1500, "retry": 1800}
