"""R9: three qcluster processes on Redis + PostgreSQL, each able to run any of three pump
slots, poll a few hundred long jobs for about a minute. The poll log (``STEWARD_POLL_LOG``,
one line per retrieve: ``<answered> <job id> <slip> <asked> <lease owner> <pid>``) must show
several pollers at work, and never two of them retrieving the same job at the same time;
every job must complete exactly once."""

import os
import random
from collections import Counter, defaultdict

import pytest

from jobs import services
from jobs.models import Artifact, Job, JobEvent, Status
from tests.factories import WorkspaceFactory, member_of
from tests.processes import wait_for

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.pg,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
]

CLUSTERS = 3
PUMP_SLOTS = (0, 1, 2)
JOBS = 300
DURATION = (20.0, 45.0)  # seconds per fake response: long enough for many polls each
FINISH_SECONDS = 180


def read_poll_log(path):
    """``[(job id, asked, answered, poller)]`` where a poller is (lease owner, pid)."""
    retrieves = []
    for line in path.read_text().splitlines():
        answered, job_id, _slip, asked, owner, pid = line.split()
        retrieves.append((job_id, float(asked), float(answered), (owner, int(pid))))
    return retrieves


def overlapping_retrieves(retrieves):
    """Pairs of retrieves of one job by different pollers whose [asked, answered] overlap."""
    by_job = defaultdict(list)
    for job_id, asked, answered, poller in retrieves:
        by_job[job_id].append((asked, answered, poller))
    overlaps = []
    for job_id, polls in by_job.items():
        polls.sort()
        for i, (asked, answered, poller) in enumerate(polls):
            for later_asked, _, other in polls[i + 1 :]:
                if later_asked >= answered:
                    break
                if other != poller:
                    overlaps.append((job_id, (asked, answered, poller), (later_asked, other)))
    return overlaps


def cluster_of(pid, clusters):
    """Which started cluster a worker pid belongs to (by process group), if it still runs."""
    try:
        group = os.getpgid(pid)
    except ProcessLookupError:
        return None
    for index, cluster in enumerate(clusters):
        if cluster.process.pid == group:
            return index
    return None


def test_three_clusters_never_poll_one_job_at_once(chaos_env, clusters, chaos_report, tmp_path):
    poll_log = tmp_path / "polls.log"
    env = chaos_env(PUMP_SLOTS=len(PUMP_SLOTS), STEWARD_POLL_LOG=poll_log)
    started = [clusters.start(env, pump_slots=PUMP_SLOTS)]
    started += [clusters.start(env, pump_slots=()) for _ in range(CLUSTERS - 1)]

    rng = random.Random(9)
    workspace = WorkspaceFactory()
    user = member_of(workspace)
    job_ids = [
        services.submit_job(
            workspace=workspace,
            submitter=user,
            job_type="summarize_document",
            input={
                "title": f"Ledger {number}",
                "document": f"Entries. [fake:duration={rng.uniform(*DURATION):.0f}]",
            },
        ).pk
        for number in range(JOBS)
    ]

    def finished():
        return Job.objects.filter(pk__in=job_ids).exclude(
            status__in=[Status.QUEUED, Status.RUNNING]
        )

    try:
        wait_for(
            lambda: finished().count() == JOBS,
            timeout=FINISH_SECONDS,
            interval=2,
            message="every job to finish on three clusters",
        )
    except AssertionError as error:
        counts = Counter(Job.objects.filter(pk__in=job_ids).values_list("status", flat=True))
        raise AssertionError(f"{error}; statuses now {dict(counts)}") from None

    retrieves = read_poll_log(poll_log)
    pollers = Counter(poller for *_, poller in retrieves)
    pids = {pid for _, pid in pollers}
    slots = {owner.split(":", 1)[0] for owner, _ in pollers if owner.startswith("pump")}
    pid_clusters = {cluster_of(pid, started) for pid in pids} - {None}
    overlaps = overlapping_retrieves(retrieves)
    statuses = Counter(Job.objects.filter(pk__in=job_ids).values_list("status", flat=True))
    chaos_report(
        "R9 three clusters",
        clusters=CLUSTERS,
        jobs=JOBS,
        retrieves=len(retrieves),
        distinct_pollers=len(pollers),
        distinct_pids=len(pids),
        pump_slots_polling=len(slots),
        clusters_seen_polling=len(pid_clusters),
        overlaps=len(overlaps),
        outcomes=dict(statuses),
    )

    assert len(pids) > 1, f"only one process polled: {pollers}"
    assert overlaps == [], f"{len(overlaps)} jobs polled by two at once, first: {overlaps[:5]}"
    assert dict(statuses) == {Status.COMPLETED: JOBS}
    assert {job_id for job_id, *_ in retrieves} == {str(pk) for pk in job_ids}
    released = Counter(
        Artifact.objects.filter(
            job_id__in=job_ids, kind=Artifact.Kind.TEXT, is_stale=False
        ).values_list("job_id", flat=True)
    )
    completed_events = Counter(
        JobEvent.objects.filter(job_id__in=job_ids, kind="completed").values_list(
            "job_id", flat=True
        )
    )
    assert set(released.values()) == {1} and len(released) == JOBS
    assert set(completed_events.values()) == {1} and len(completed_events) == JOBS
