"""When to look at an in-flight job next: the backoff, and the first look learned per job type.

The detection target is "a finish is seen within max(2 s, 10 % of the job's run time)". Looking
every tenth of the job's age meets it for any run time, and no slower growth can: a job that
ends just after a look is next seen one interval later. What the backoff cannot know is when a
job type's work *starts* to end. Looking every 1.5 s from the start spends a dozen retrieves
in the first 20 s of every job, which for a job type that never finishes that early is a third
of all its retrieves (bench/RESULTS.md, P2).

So the pacing learns each job type's shortest run times from the provider's own clock
(``Attempt.provider_seconds``: ``completed_at - created_at`` of completed responses) and makes
the first look at 0.9 × the 2nd percentile of the latest ``POLL_LEARN_SAMPLES`` runs, once at
least ``POLL_LEARN_MIN_SAMPLES`` are known; the tenth-of-age backoff takes over from there.
About 2 % of a type's jobs finish before that first look and are seen late; the lag target is
a 95th percentile, and a type whose run times spread down to seconds learns an early first look
and keeps its short polls. A type with too little history (a new install, a new job type) is
polled from the start as before. Each process recomputes a type's figure at most every
``POLL_LEARN_REFRESH_SECONDS``.

With webhooks on, a webhook makes the job due at once and polling is only the safety net for a
lost delivery: it must still read the result inside the provider's retention (about ten minutes
after the response ends), so a fixed ``WEBHOOK_SAFETY_POLL_SECONDS`` (default 9 minutes)
suffices: at most one extra retrieve for jobs under nine minutes.

Neither a webhook nor the learned first look tells when the model *starts* on a response the
provider accepted as ``queued``, and until a look sees it working the job stays ``queued``
(its page says it was sent and not yet seen to start). Such looks are paid for only while
someone watches the job: its open page or event stream makes it due at this same backoff
(``jobs.services.look_soon``). Unwatched, the pacing above is all it gets (bench P2).
"""

import math
import random
import time
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from ..models import Attempt

# (job type) -> (computed at, monotonic; first look in seconds or 0)
_learned: dict[str, tuple[float, float]] = {}


def _backoff(age_seconds):
    base = min(max(settings.POLL_MIN_INTERVAL, age_seconds * 0.1), settings.POLL_MAX_INTERVAL)
    return base * random.uniform(0.9, 1.0)


def poll_interval(age_seconds):
    """Seconds until the next look: short at first, about a tenth of the age later, capped."""
    if settings.OPENAI_WEBHOOKS_ENABLED:
        return settings.WEBHOOK_SAFETY_POLL_SECONDS * random.uniform(0.9, 1.0)
    return _backoff(age_seconds)


def next_look(age_seconds, first_look=0.0):
    """Seconds from now until the next look at an attempt ``age_seconds`` old: the backoff, but
    not before the job type's learned first look."""
    return max(poll_interval(age_seconds), first_look - age_seconds)


def first_look(job_type):
    """Seconds after an attempt starts before it is worth a look (0: look early), learned from
    the job type's recent provider run times; cached per process."""
    if settings.OPENAI_WEBHOOKS_ENABLED or not settings.POLL_LEARN_SAMPLES:
        return 0.0
    now = time.monotonic()
    known = _learned.get(job_type)
    if known is None or now - known[0] >= settings.POLL_LEARN_REFRESH_SECONDS:
        known = (now, learned_first_look(job_type))
        _learned[job_type] = known
    return known[1]


def learned_first_look(job_type, *, now=None):
    """0.9 × the 2nd percentile of the type's latest run times (within a week), or 0 with
    fewer than ``POLL_LEARN_MIN_SAMPLES`` of them."""
    now = now or timezone.now()
    runs = sorted(
        Attempt.objects.filter(
            job__job_type=job_type,
            provider_seconds__isnull=False,
            finished_at__gte=now - timedelta(days=7),
        )
        .order_by("-finished_at")
        .values_list("provider_seconds", flat=True)[: settings.POLL_LEARN_SAMPLES]
    )
    if len(runs) < max(1, settings.POLL_LEARN_MIN_SAMPLES):
        return 0.0
    low = runs[max(0, math.ceil(0.02 * len(runs)) - 1)]
    return 0.9 * low


def forget_learned():
    """Drop the per-process cache (tests, or after settings change)."""
    _learned.clear()
